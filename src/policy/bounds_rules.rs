//! The rows [`bounds`](super::bounds) checks, per kind, and the words they are written in. Each row names the reference it follows:
//! Kubernetes' name and label syntax, Karpenter's CRD schemas (karpenter.sh/v1 NodePool,
//! karpenter.k8s.aws/v1 EC2NodeClass, karpenter.sh/v1alpha1 NodeOverlay, as of Karpenter 1.15)
//! and kOps's InstanceGroup and Cluster validation. Rules across fields are in
//! [`checks`](super::checks) and [`crd_nodeclass`](super::crd_nodeclass).

use super::crd_patterns as pattern;
use super::document::Kind;

/// What a row checks.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// A DNS-1123 subdomain of at most this many characters; the text says why.
    Subdomain(usize, &'static str),
    /// A DNS-1123 label; the text says why.
    Label(&'static str),
    /// A qualified name (`[prefix/]name`); the text names what it is (`label key`).
    QualifiedName(&'static str),
    /// A label value; the text names what it is.
    LabelValue(&'static str),
    /// An integer from `min` to `max`; the text is the hint.
    Int(i64, i64, &'static str),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A non-negative Kubernetes quantity written as a string (fields kept untyped).
    Quantity,
    /// An EBS volume size as Karpenter's EC2NodeClass accepts it.
    VolumeSize,
    /// Text a function of [`crd_patterns`](super::crd_patterns) accepts; then what the CRD
    /// requires, in words, and the hint.
    Matches(fn(&str) -> bool, &'static str, &'static str),
    /// Text of at most this many characters; the text names the field.
    MaxLength(usize, &'static str),
    /// Text that is not empty; the text is the CRD's rule.
    NotEmpty(&'static str),
    /// A list of at most this many items; the text is the hint.
    MaxItems(usize, &'static str),
    /// A mapping of at most this many keys; the text is the hint.
    MaxProperties(usize, &'static str),
}

/// Whether a row checks the value at its path or the keys of the mapping there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Value,
    Keys,
}

/// A condition on another field of the same document.
#[derive(Debug, Clone, Copy)]
pub enum When {
    Always,
    Is(&'static str, &'static str),
    IsNot(&'static str, &'static str),
}

/// One rule at one path: dotted keys, `[]` for every list item, `*` for every mapping value.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub path: &'static str,
    pub target: Target,
    pub rule: Rule,
    pub when: When,
}

const fn row(path: &'static str, rule: Rule) -> Row {
    Row { path, target: Target::Value, rule, when: When::Always }
}

const fn keys(path: &'static str, rule: Rule) -> Row {
    Row { path, target: Target::Keys, rule, when: When::Always }
}

const fn when(path: &'static str, rule: Rule, when: When) -> Row {
    Row { path, target: Target::Value, rule, when }
}

const INT32: i64 = i32::MAX as i64;
const MAX: i64 = i64::MAX;

const OBJECT_NAME: &str = "Kubernetes object names are DNS-1123 subdomains";
const LABEL_KEY: Rule = Rule::QualifiedName("label key");
const LABEL_VALUE: Rule = Rule::LabelValue("label value");
const RESERVED_KEYS: Rule = Rule::OneOf(&["cpu", "memory", "ephemeral-storage", "pid"]);
const KARPENTER: &str = "spec.manager";

const NODE_POOL: &[Row] = &[
    row(
        "metadata.name",
        Rule::Subdomain(63, "Karpenter writes a NodePool's name as the value of the node label karpenter.sh/nodepool"),
    ),
    row("spec.weight", Rule::Int(1, 100, "use a weight from 1 to 100, or leave it unset")),
    row("spec.replicas", Rule::Int(0, MAX, "set a node count of 0 or more")),
    // Label keys: the CRD checks only their domains (in checks); Karpenter's runtime
    // validation refuses a key that is not a qualified name, and the node could not carry it.
    keys("spec.template.metadata.labels", LABEL_KEY),
    row("spec.template.metadata.labels", Rule::MaxProperties(100, "Karpenter accepts at most 100 template labels")),
    row("spec.template.metadata.labels.*", LABEL_VALUE),
    row("spec.template.spec.requirements[].key", Rule::QualifiedName("requirement key")),
    row("spec.template.spec.requirements[].key", REQUIREMENT_KEY_LENGTH),
    row("spec.template.spec.requirements[].values[]", Rule::LabelValue("requirement value")),
    row("spec.template.spec.requirements[].minValues", Rule::Int(1, 50, "use a number from 1 to 50")),
    row("spec.template.spec.taints[].key", Rule::QualifiedName("taint key")),
    row("spec.template.spec.taints[].value", TAINT_VALUE),
    row("spec.template.spec.taints[].timeAdded", DATE_TIME),
    row("spec.template.spec.startupTaints[].key", Rule::QualifiedName("taint key")),
    row("spec.template.spec.startupTaints[].value", TAINT_VALUE),
    row("spec.template.spec.startupTaints[].timeAdded", DATE_TIME),
    row(
        "spec.disruption.budgets[].duration",
        Rule::Matches(
            pattern::budget_duration,
            "match ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$ (hours and/or minutes)",
            "write whole hours and minutes, e.g. 8h, 90m or 1h30m",
        ),
    ),
    row(
        "spec.disruption.budgets[].reasons",
        Rule::MaxItems(50, "list each of Underutilized, Empty and Drifted at most once"),
    ),
];

const REQUIREMENT_KEY_LENGTH: Rule = Rule::MaxLength(316, "requirement key");
const TAINT_VALUE: Rule = Rule::Matches(
    pattern::taint_value,
    "be [prefix/]name: the CRD refuses an empty value, and Karpenter reads a value as a qualified name",
    "leave value out for a taint without one, or use letters, digits, `-`, `_` and `.` (at most 63, with an optional DNS prefix and `/`)",
);
const DATE_TIME: Rule = Rule::Matches(
    pattern::date_time,
    "be an RFC 3339 time (format: date-time)",
    "write e.g. 2024-05-01T10:00:00Z, or leave timeAdded out",
);
const TAGS_20: Rule = Rule::MaxProperties(20, "Karpenter accepts at most 20 tags in one selector term");
const TERMS_30: Rule = Rule::MaxItems(30, "Karpenter accepts at most 30 selector terms; merge terms by tags");
const ENABLED: Rule = Rule::OneOf(&["enabled", "disabled"]);

const EC2_NODE_CLASS: &[Row] = &[
    row(
        "metadata.name",
        Rule::Subdomain(
            63,
            "Karpenter writes an EC2NodeClass's name as the value of the node label karpenter.k8s.aws/ec2nodeclass",
        ),
    ),
    row("spec.amiSelectorTerms", TERMS_30),
    row("spec.amiSelectorTerms[].alias", Rule::MaxLength(30, "AMI alias")),
    row(
        "spec.amiSelectorTerms[].id",
        Rule::Matches(
            pattern::ami_id,
            "match ami-[0-9a-z]+",
            "write the id as EC2 shows it, e.g. ami-0123456789abcdef0",
        ),
    ),
    row("spec.amiSelectorTerms[].tags", TAGS_20),
    row("spec.subnetSelectorTerms", TERMS_30),
    row(
        "spec.subnetSelectorTerms[].id",
        Rule::Matches(
            pattern::subnet_id,
            "match subnet-[0-9a-z]+",
            "write the id as EC2 shows it, e.g. subnet-0123456789abcdef0",
        ),
    ),
    row("spec.subnetSelectorTerms[].tags", TAGS_20),
    row("spec.securityGroupSelectorTerms", TERMS_30),
    row(
        "spec.securityGroupSelectorTerms[].id",
        Rule::Matches(
            pattern::security_group_id,
            "match sg-[0-9a-z]+",
            "write the id as EC2 shows it, e.g. sg-0123456789abcdef0",
        ),
    ),
    row("spec.securityGroupSelectorTerms[].tags", TAGS_20),
    row("spec.capacityReservationSelectorTerms[].tags", TAGS_20),
    row("spec.capacityReservationSelectorTerms[].instanceMatchCriteria", Rule::OneOf(&["open", "targeted"])),
    // EBS iops and throughput have no bounds in the CRD (EC2 checks them per volume type).
    row("spec.blockDeviceMappings", Rule::MaxItems(50, "Karpenter accepts at most 50 block device mappings")),
    row("spec.blockDeviceMappings[].ebs.volumeSize", Rule::VolumeSize),
    row("spec.blockDeviceMappings[].ebs.volumeInitializationRate", Rule::Int(100, 300, "use 100 to 300 MiB/s")),
    row("spec.connectionTracking.tcpEstablishedTimeout", Rule::Int(60, 432_000, "use 60 to 432000 seconds")),
    row("spec.connectionTracking.udpStreamTimeout", Rule::Int(60, 180, "use 60 to 180 seconds")),
    row("spec.connectionTracking.udpTimeout", Rule::Int(30, 60, "use 30 to 60 seconds")),
    row("spec.ipPrefixCount", Rule::Int(0, INT32, "use a count from 0 to 2147483647 (a 32-bit integer)")),
    row("spec.instanceProfile", Rule::NotEmpty("instanceProfile cannot be empty")),
    row("spec.role", Rule::NotEmpty("role cannot be empty")),
    row("spec.networkInterfaces", Rule::MaxItems(150, "Karpenter accepts at most 150 network interfaces")),
    row("spec.networkInterfaces[].deviceIndex", Rule::Int(0, INT32, "use a device index of 0 or more")),
    row("spec.networkInterfaces[].networkCardIndex", Rule::Int(0, INT32, "use a network card index of 0 or more")),
    row("spec.networkInterfaces[].interfaceType", Rule::OneOf(&["interface", "efa-only"])),
    row(
        "spec.placementGroupSelector.id",
        Rule::Matches(
            pattern::placement_group_id,
            "match ^pg-[0-9a-z]+$",
            "write the id as EC2 shows it, e.g. pg-0123456789abcdef0, or select by name",
        ),
    ),
    row("spec.placementGroupSelector.name", Rule::NotEmpty("a placement group name has at least 1 character")),
    row("spec.metadataOptions.httpEndpoint", ENABLED),
    row("spec.metadataOptions.httpProtocolIPv6", ENABLED),
    row("spec.metadataOptions.httpTokens", Rule::OneOf(&["required", "optional"])),
    row("spec.kubelet.maxPods", Rule::Int(0, INT32, "use a pod count from 0 to 2147483647 (a 32-bit integer)")),
    row("spec.kubelet.podsPerCore", Rule::Int(0, INT32, "use a count from 0 to 2147483647 (a 32-bit integer)")),
    row("spec.kubelet.imageGCHighThresholdPercent", Rule::Int(0, 100, "use a percentage from 0 to 100")),
    row("spec.kubelet.imageGCLowThresholdPercent", Rule::Int(0, 100, "use a percentage from 0 to 100")),
    row(
        "spec.kubelet.evictionMaxPodGracePeriod",
        Rule::Int(0, INT32, "use a number of seconds from 0 to 2147483647 (a 32-bit integer)"),
    ),
    keys("spec.kubelet.systemReserved", RESERVED_KEYS),
    keys("spec.kubelet.kubeReserved", RESERVED_KEYS),
    row("spec.metadataOptions.httpPutResponseHopLimit", Rule::Int(1, 64, "use 1 (no container access to IMDS) or 2")),
];

const ROOT_VOLUME_TYPES: Rule = Rule::OneOf(&["standard", "gp3", "gp2", "io1", "io2"]);

const INSTANCE_GROUP: &[Row] = &[
    row(
        "metadata.name",
        Rule::Subdomain(253, "kOps stores an InstanceGroup under instancegroup/<name> in the state store"),
    ),
    row("spec.manager", Rule::OneOf(&["CloudGroup", "Karpenter"])),
    // A Karpenter-managed IG's minSize is checked by the translation, which says what it means.
    when("spec.minSize", Rule::Int(0, INT32, "set minSize to 0 or more"), When::IsNot(KARPENTER, "Karpenter")),
    when("spec.maxSize", Rule::Int(0, INT32, "set maxSize to 0 or more"), When::IsNot(KARPENTER, "Karpenter")),
    when(
        "spec.maxSize",
        Rule::Int(
            1,
            INT32,
            "kOps requires maxSize above 0 on a Karpenter-managed InstanceGroup; it becomes limits.nodes",
        ),
        When::Is(KARPENTER, "Karpenter"),
    ),
    row("spec.rootVolumeSize", Rule::Int(1, INT32, "give the size in GiB, 1 or more, e.g. 128")),
    row("spec.rootVolume.size", Rule::Int(1, INT32, "give the size in GiB, 1 or more, e.g. 128")),
    row("spec.rootVolumeType", ROOT_VOLUME_TYPES),
    row("spec.rootVolume.type", ROOT_VOLUME_TYPES),
    row("spec.rootVolumeIops", Rule::Int(0, INT32, "give the IOPS as a whole number, e.g. 3000")),
    row("spec.rootVolumeIOPS", Rule::Int(0, INT32, "give the IOPS as a whole number, e.g. 3000")),
    row("spec.rootVolume.iops", Rule::Int(0, INT32, "give the IOPS as a whole number, e.g. 3000")),
    row("spec.rootVolumeThroughput", Rule::Int(0, INT32, "give MiB/s as a whole number, e.g. 125")),
    row("spec.rootVolume.throughput", Rule::Int(0, INT32, "give MiB/s as a whole number, e.g. 125")),
    row(
        "spec.kubelet.maxPods",
        Rule::Int(0, INT32, "use a pod count from 0 to 2147483647 (kOps reads a 32-bit integer)"),
    ),
    row("spec.kubelet.systemReserved.*", Rule::Quantity),
    row("spec.kubelet.kubeReserved.*", Rule::Quantity),
    keys("spec.nodeLabels", LABEL_KEY),
    row("spec.nodeLabels.*", LABEL_VALUE),
    keys("spec.kubelet.nodeLabels", LABEL_KEY),
    row("spec.kubelet.nodeLabels.*", LABEL_VALUE),
    row("spec.mixedInstancesPolicy.onDemandBase", Rule::Int(0, INT32, "set a count of 0 or more")),
    row("spec.mixedInstancesPolicy.onDemandAboveBase", Rule::Int(0, 100, "use a percentage from 0 to 100")),
];

const CLUSTER: &[Row] = &[row(
    "metadata.name",
    Rule::Subdomain(253, "kOps requires the cluster name to be a DNS name, e.g. dev.example.com"),
)];

const CLUSTER_POLICY: &[Row] = &[row("metadata.name", Rule::Subdomain(253, OBJECT_NAME))];

const FLEET: &[Row] = &[
    row("metadata.name", Rule::Subdomain(253, OBJECT_NAME)),
    row(
        "spec.clusters[].name",
        Rule::Subdomain(63, "it names the folder clusters/<name>/ and the cluster in status and metrics"),
    ),
    row(
        "spec.clusters[].kopsName",
        Rule::Subdomain(
            253,
            "kOps requires the cluster name to be a DNS name; it names the cluster's folder in the state store",
        ),
    ),
    row("spec.clusters[].region", Rule::Label("AWS region names look like us-east-1")),
];

const GUARDRAILS: &[Row] = &[
    row("metadata.name", Rule::Subdomain(253, OBJECT_NAME)),
    keys("spec.clusterCpu", Rule::Subdomain(63, "the keys are cluster names from fleet.yaml")),
];

const NODE_OVERLAY: &[Row] = &[
    row("metadata.name", Rule::Subdomain(253, OBJECT_NAME)),
    row("spec.requirements[].key", Rule::QualifiedName("requirement key")),
    row("spec.requirements[].key", REQUIREMENT_KEY_LENGTH),
    row("spec.requirements[].values[]", Rule::LabelValue("requirement value")),
    row(
        "spec.weight",
        Rule::Int(1, 10_000, "use a weight from 1 to 10000 (Karpenter's NodeOverlay range), or leave it unset"),
    ),
];

const COMMITMENT: &[Row] = &[
    row("metadata.name", Rule::Subdomain(253, OBJECT_NAME)),
    row("spec.region", Rule::Label("AWS region names look like us-east-1")),
    row("spec.count", Rule::Int(1, MAX, "give the number of reserved instances, 1 or more")),
    keys("spec.shares", Rule::Subdomain(63, "the keys are cluster names from fleet.yaml")),
];

/// The rows of one kind.
pub fn rules(kind: Kind) -> &'static [Row] {
    match kind {
        Kind::NodePool => NODE_POOL,
        Kind::EC2NodeClass => EC2_NODE_CLASS,
        Kind::InstanceGroup => INSTANCE_GROUP,
        Kind::Cluster => CLUSTER,
        Kind::ClusterPolicy => CLUSTER_POLICY,
        Kind::Fleet => FLEET,
        Kind::Guardrails => GUARDRAILS,
        Kind::NodeOverlay => NODE_OVERLAY,
        Kind::Commitment => COMMITMENT,
        Kind::CapacityBuffer | Kind::PodTemplate => CLUSTER_POLICY,
    }
}
