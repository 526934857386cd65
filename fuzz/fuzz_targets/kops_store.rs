//! The kOps state-store reader on one hostile object: the input is read as an InstanceGroup and
//! as a Cluster spec, the way the reconciler reads `<cluster>/instancegroup/<name>` and
//! `<cluster>/config`. An InstanceGroup that reads must survive being written the way kOps writes
//! it and read back unchanged. Any panic is a finding.

#![no_main]

use capstan::kops::object::{read_cluster, read_instance_group, write_yaml};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "dev.example.com/instancegroup/nodes";

fuzz_target!(|data: &[u8]| {
    let _ = read_cluster("dev.example.com/config", data);
    let Ok(ig) = read_instance_group(KEY, data) else { return };
    let written = write_yaml(&ig);
    match read_instance_group(KEY, &written) {
        Ok(again) => assert_eq!(again, ig, "an InstanceGroup changed on a write and a read"),
        Err(e) => panic!("an InstanceGroup that read could not be read back after writing: {e}"),
    }
});
