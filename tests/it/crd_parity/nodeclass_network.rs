//! EC2NodeClass network interfaces, placement group, connection tracking, kubelet and other
//! single fields.

use serde_json::json;

use super::Base::Class;
use super::{Case, accept, reject, run};

const NICS: &str = "spec.networkInterfaces";
const PG: &str = "spec.placementGroupSelector";
const CT: &str = "spec.connectionTracking";

fn nic(card: i64, device: i64, kind: &str) -> serde_json::Value {
    json!({"networkCardIndex": card, "deviceIndex": device, "interfaceType": kind})
}

fn cases() -> Vec<Case> {
    let nic_pairs = "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card";
    vec![
        // network interfaces
        accept(
            Class,
            "primary and efa",
            nic_pairs,
            NICS,
            json!([nic(0, 0, "interface"), nic(0, 1, "efa-only"), nic(1, 0, "efa-only")]),
        ),
        reject(
            Class,
            "no primary",
            "networkInterfaces must include a primary interface with interfaceType='interface'",
            NICS,
            json!([nic(0, 1, "interface")]),
            (NICS, "must include a primary interface"),
        ),
        reject(
            Class,
            "efa primary",
            "networkInterfaces must include a primary interface with interfaceType='interface'",
            NICS,
            json!([nic(0, 0, "efa-only")]),
            (NICS, "must include a primary interface"),
        ),
        reject(
            Class,
            "duplicate slot",
            nic_pairs,
            NICS,
            json!([nic(0, 0, "interface"), nic(0, 0, "interface")]),
            (NICS, "must not have duplicate"),
        ),
        reject(
            Class,
            "two efa on a card",
            nic_pairs,
            NICS,
            json!([nic(0, 0, "interface"), nic(1, 0, "efa-only"), nic(1, 1, "efa-only")]),
            (NICS, "at most one efa device per network card"),
        ),
        reject(
            Class,
            "interface type",
            "interfaceType enum: interface, efa-only",
            NICS,
            json!([nic(0, 0, "interface"), nic(0, 1, "trunk")]),
            (NICS, "not one of interface, efa-only"),
        ),
        reject(
            Class,
            "negative device index",
            "deviceIndex minimum: 0",
            NICS,
            json!([nic(0, 0, "interface"), nic(0, -1, "interface")]),
            (NICS, "out of range"),
        ),
        reject(
            Class,
            "missing deviceIndex",
            "required: deviceIndex, interfaceType, networkCardIndex",
            NICS,
            json!([{"networkCardIndex": 0, "interfaceType": "interface"}]),
            (NICS, "missing field deviceIndex"),
        ),
        reject(
            Class,
            "151 interfaces",
            "networkInterfaces maxItems: 150",
            NICS,
            json!((0..151).map(|i| nic(i, 0, "interface")).collect::<Vec<_>>()),
            (NICS, "maxItems 150"),
        ),
        // placement group
        accept(
            Class,
            "placement group by name",
            "expected at least one, got none, ['name', 'id']",
            PG,
            json!({"name": "cluster-pg"}),
        ),
        accept(Class, "placement group by id", "id pattern ^pg-[0-9a-z]+$", PG, json!({"id": "pg-0abc"})),
        reject(
            Class,
            "placement group empty",
            "expected at least one, got none, ['name', 'id']",
            PG,
            json!({}),
            (PG, "got none, ['name', 'id']"),
        ),
        reject(
            Class,
            "placement group both",
            "'name' and 'id' are mutually exclusive",
            PG,
            json!({"name": "a", "id": "pg-1"}),
            (PG, "'name' and 'id' are mutually exclusive"),
        ),
        reject(
            Class,
            "placement group id",
            "id pattern ^pg-[0-9a-z]+$",
            PG,
            json!({"id": "my-pg-1"}),
            (PG, "^pg-[0-9a-z]+$"),
        ),
        reject(
            Class,
            "placement group empty name",
            "name minLength: 1",
            PG,
            json!({"name": ""}),
            (PG, "at least 1 character"),
        ),
        // connection tracking
        accept(
            Class,
            "tcp timeout 432000",
            "tcpEstablishedTimeout maximum: 432000",
            CT,
            json!({"tcpEstablishedTimeout": 432000}),
        ),
        reject(
            Class,
            "tcp timeout 59",
            "tcpEstablishedTimeout minimum: 60",
            CT,
            json!({"tcpEstablishedTimeout": 59}),
            (CT, "out of range"),
        ),
        reject(
            Class,
            "udp stream 181",
            "udpStreamTimeout maximum: 180",
            CT,
            json!({"udpStreamTimeout": 181}),
            (CT, "out of range"),
        ),
        reject(Class, "udp 29", "udpTimeout minimum: 30", CT, json!({"udpTimeout": 29}), (CT, "out of range")),
        reject(
            Class,
            "no timeout",
            "at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set",
            CT,
            json!({}),
            (CT, "at least one of tcpEstablishedTimeout"),
        ),
        // other scalars
        reject(
            Class,
            "ip prefixes -1",
            "ipPrefixCount minimum: 0",
            "spec.ipPrefixCount",
            json!(-1),
            ("spec.ipPrefixCount", "out of range"),
        ),
        reject(
            Class,
            "instance store RAID1",
            "instanceStorePolicy enum: RAID0",
            "spec.instanceStorePolicy",
            json!("RAID1"),
            ("spec.instanceStorePolicy", ""),
        ),
        reject(
            Class,
            "nested virtualization on",
            "nestedVirtualization enum: enabled, disabled",
            "spec.cpuOptions",
            json!({"nestedVirtualization": "on"}),
            ("spec.cpuOptions", ""),
        ),
        accept(Class, "user data", "userData type: string", "spec.userData", json!("#!/bin/bash\necho hi")),
        reject(
            Class,
            "public IP as text",
            "associatePublicIPAddress type: boolean",
            "spec.associatePublicIPAddress",
            json!("maybe"),
            ("spec.associatePublicIPAddress", ""),
        ),
        // kubelet: x-kubernetes-preserve-unknown-fields
        accept(
            Class,
            "any kubelet field",
            "kubelet x-kubernetes-preserve-unknown-fields: true",
            "spec.kubelet",
            json!({"registryPullQPS": 10, "maxPods": 110}),
        )
        .warns("not acted on"),
        reject(
            Class,
            "registerWithTaints",
            "Karpenter runtime: registerWithTaints can't be set",
            "spec.kubelet",
            json!({"registerWithTaints": []}),
            ("spec.kubelet.registerWithTaints", "cannot be set"),
        ),
    ]
}

#[test]
fn nodeclass_network_and_kubelet_follow_the_crd() {
    run(&cases());
}
