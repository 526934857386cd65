//! The policy loader on one hostile file: the input is added to the example fleet repository at
//! every place of the dev cluster's layout that holds a policy document (its NodePools,
//! EC2NodeClasses, InstanceGroups and ClusterPolicy), so that whatever kind it claims to be, it
//! is read where that kind belongs; the whole repository is validated for every cluster, and
//! each effective policy rendered. Any panic, overflow or hang is a finding.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use capstan::policy::{self, Snapshot};
use libfuzzer_sys::fuzz_target;

/// Where the input goes: each a place the loader reads (see the README's layout).
const PLACES: [&str; 4] = [
    "clusters/dev/nodepools/fuzz.yaml",
    "clusters/dev/nodeclasses/fuzz.yaml",
    "clusters/dev/instancegroups/fuzz.yaml",
    "clusters/dev/policy.yaml",
];

fn examples() -> &'static Snapshot {
    static EXAMPLES: OnceLock<Snapshot> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
        Snapshot::from_dir(&root).expect("the example fleet repository is readable")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut snapshot = examples().clone();
    for place in PLACES {
        snapshot.insert(place, data.to_vec());
    }
    if let Ok(validation) = policy::validate(&snapshot, None) {
        for effective in &validation.policies {
            let _ = policy::render::render(effective);
        }
    }
});
