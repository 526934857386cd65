//! EC2NodeClass role and instance profile, tags, block devices and metadata options.

use serde_json::json;

use super::Base::Class;
use super::{Case, accept, reject, run};

const BDM: &str = "spec.blockDeviceMappings";

fn cases() -> Vec<Case> {
    let one_of = "must specify exactly one of ['role', 'instanceProfile']";
    vec![
        // role and instanceProfile
        reject(
            Class,
            "role and profile",
            one_of,
            "spec.instanceProfile",
            json!("p"),
            ("spec.instanceProfile", "both set"),
        ),
        reject(
            Class,
            "neither role nor profile",
            one_of,
            "spec.role",
            json!(null),
            ("spec", "neither role nor instanceProfile"),
        ),
        accept(Class, "profile alone", one_of, "spec.role", json!(null)).and("spec.instanceProfile", json!("nodes")),
        reject(
            Class,
            "empty role",
            "role cannot be empty",
            "spec.role",
            json!(""),
            ("spec.role", "role cannot be empty"),
        ),
        reject(
            Class,
            "empty profile",
            "instanceProfile cannot be empty",
            "spec.role",
            json!(null),
            ("spec.instanceProfile", "instanceProfile cannot be empty"),
        )
        .and("spec.instanceProfile", json!("")),
        // tags
        accept(Class, "own tag", "tags additionalProperties: string", "spec.tags", json!({"team": "a", "Name": ""})),
        reject(
            Class,
            "empty tag key",
            "empty tag keys aren't supported",
            "spec.tags",
            json!({"": "a"}),
            ("spec.tags", "empty tag keys aren't supported"),
        ),
        reject(
            Class,
            "eks cluster tag",
            "tag contains a restricted tag matching eks:eks-cluster-name",
            "spec.tags",
            json!({"eks:eks-cluster-name": "a"}),
            ("spec.tags", "restricted tag matching eks:eks-cluster-name"),
        ),
        reject(
            Class,
            "cluster tag",
            "tag contains a restricted tag matching kubernetes.io/cluster/",
            "spec.tags",
            json!({"kubernetes.io/clusterx": "owned"}),
            ("spec.tags", "restricted tag matching kubernetes.io/cluster/"),
        ),
        reject(
            Class,
            "nodepool tag",
            "tag contains a restricted tag matching karpenter.sh/nodepool",
            "spec.tags",
            json!({"karpenter.sh/nodepool": "a"}),
            ("spec.tags", "restricted tag matching karpenter.sh/nodepool"),
        ),
        reject(
            Class,
            "nodeclaim tag",
            "tag contains a restricted tag matching karpenter.sh/nodeclaim",
            "spec.tags",
            json!({"karpenter.sh/nodeclaim": "a"}),
            ("spec.tags", "restricted tag matching karpenter.sh/nodeclaim"),
        ),
        reject(
            Class,
            "ec2nodeclass tag",
            "tag contains a restricted tag matching karpenter.k8s.aws/ec2nodeclass",
            "spec.tags",
            json!({"karpenter.k8s.aws/ec2nodeclass": "a"}),
            ("spec.tags", "restricted tag matching karpenter.k8s.aws/ec2nodeclass"),
        ),
        accept(
            Class,
            "karpenter.sh/discovery tag",
            "only the five keys are restricted",
            "spec.tags",
            json!({"karpenter.sh/discovery": "a"}),
        ),
        // block devices
        accept(
            Class,
            "17Ti volume",
            "volumeSize pattern ([1-9]||[1-5][0-7]|58)Ti",
            BDM,
            json!([{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "17Ti"}}]),
        ),
        reject(
            Class,
            "18Ti volume",
            "volumeSize pattern ([1-9]||[1-5][0-7]|58)Ti",
            BDM,
            json!([{"ebs": {"volumeSize": "18Ti"}}]),
            (BDM, "not one Karpenter accepts"),
        ),
        reject(
            Class,
            "59001Gi volume",
            "volumeSize pattern (...|59000)Gi",
            BDM,
            json!([{"ebs": {"volumeSize": "59001Gi"}}]),
            (BDM, "not one Karpenter accepts"),
        ),
        reject(
            Class,
            "100Mi volume",
            "volumeSize pattern: units Gi, G, Ti, T",
            BDM,
            json!([{"ebs": {"volumeSize": "100Mi"}}]),
            (BDM, "not one Karpenter accepts"),
        ),
        reject(
            Class,
            "volume without size or snapshot",
            "snapshotID or volumeSize must be defined",
            BDM,
            json!([{"ebs": {"volumeType": "gp3"}}]),
            (BDM, "snapshotID or volumeSize must be defined"),
        ),
        accept(
            Class,
            "volume from snapshot",
            "snapshotID or volumeSize must be defined",
            BDM,
            json!([{"ebs": {"snapshotID": "snap-1"}}]),
        ),
        reject(
            Class,
            "initialization rate without snapshot",
            "snapshotID must be set when volumeInitializationRate is set",
            BDM,
            json!([{"ebs": {"volumeSize": "20Gi", "volumeInitializationRate": 200}}]),
            (BDM, "snapshotID must be set when volumeInitializationRate is set"),
        ),
        reject(
            Class,
            "initialization rate, empty snapshot",
            "!has(self.volumeInitializationRate) || (has(self.snapshotID) && self.snapshotID != '')",
            BDM,
            json!([{"ebs": {"volumeSize": "20Gi", "snapshotID": "", "volumeInitializationRate": 200}}]),
            (BDM, "snapshotID must be set"),
        ),
        accept(
            Class,
            "initialization rate 300",
            "volumeInitializationRate maximum: 300",
            BDM,
            json!([{"ebs": {"snapshotID": "snap-1", "volumeInitializationRate": 300}}]),
        ),
        reject(
            Class,
            "initialization rate 99",
            "volumeInitializationRate minimum: 100",
            BDM,
            json!([{"ebs": {"snapshotID": "snap-1", "volumeInitializationRate": 99}}]),
            (BDM, "out of range"),
        ),
        accept(
            Class,
            "negative iops",
            "iops: format int64, no bounds",
            BDM,
            json!([{"ebs": {"volumeSize": "20Gi", "iops": -1, "throughput": -1}}]),
        ),
        reject(
            Class,
            "volume type gp4",
            "volumeType enum: standard, io1, io2, gp2, sc1, st1, gp3",
            BDM,
            json!([{"ebs": {"volumeSize": "20Gi", "volumeType": "gp4"}}]),
            (BDM, ""),
        ),
        reject(
            Class,
            "two roots",
            "must have only one blockDeviceMappings with rootVolume",
            BDM,
            json!([{"rootVolume": true, "ebs": {"volumeSize": "20Gi"}}, {"rootVolume": true, "ebs": {"volumeSize": "20Gi"}}]),
            (BDM, "must have only one blockDeviceMappings with rootVolume"),
        ),
        reject(
            Class,
            "51 block devices",
            "blockDeviceMappings maxItems: 50",
            BDM,
            json!(vec![json!({"deviceName": "/dev/x"}); 51]),
            (BDM, "maxItems 50"),
        ),
        // metadata options
        accept(
            Class,
            "IMDS options",
            "metadataOptions enums",
            "spec.metadataOptions",
            json!({"httpEndpoint": "disabled", "httpProtocolIPv6": "enabled", "httpTokens": "optional", "httpPutResponseHopLimit": 64}),
        ),
        reject(
            Class,
            "httpEndpoint enable",
            "httpEndpoint enum: enabled, disabled",
            "spec.metadataOptions",
            json!({"httpEndpoint": "enable"}),
            ("spec.metadataOptions.httpEndpoint", "not one of enabled, disabled"),
        ),
        reject(
            Class,
            "httpProtocolIPv6 v6",
            "httpProtocolIPv6 enum: enabled, disabled",
            "spec.metadataOptions",
            json!({"httpProtocolIPv6": "v6"}),
            ("spec.metadataOptions.httpProtocolIPv6", "not one of enabled, disabled"),
        ),
        reject(
            Class,
            "httpTokens always",
            "httpTokens enum: required, optional",
            "spec.metadataOptions",
            json!({"httpTokens": "always"}),
            ("spec.metadataOptions.httpTokens", "not one of required, optional"),
        ),
        reject(
            Class,
            "hop limit 65",
            "httpPutResponseHopLimit maximum: 64",
            "spec.metadataOptions",
            json!({"httpPutResponseHopLimit": 65}),
            ("spec.metadataOptions.httpPutResponseHopLimit", "out of range"),
        ),
        reject(
            Class,
            "hop limit 0",
            "httpPutResponseHopLimit minimum: 1",
            "spec.metadataOptions",
            json!({"httpPutResponseHopLimit": 0}),
            ("spec.metadataOptions.httpPutResponseHopLimit", "out of range"),
        ),
    ]
}

#[test]
fn nodeclass_fields_follow_the_crd() {
    run(&cases());
}
