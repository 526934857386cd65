//! EC2NodeClass AMI selector terms and the amiFamily ↔ alias rules.

use serde_json::{Value, json};

use super::Base::Class;
use super::{Case, accept, reject, run};

const AMI: &str = "spec.amiSelectorTerms";

fn tags(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
}

fn many(term: Value, n: usize) -> Value {
    json!(vec![term; n])
}

fn cases() -> Vec<Case> {
    let at_least = "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']";
    let id_alone = "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms";
    let alias_alone =
        "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms";
    let by_id = json!({"id": "ami-0abc"});
    vec![
        // AMI terms
        reject(Class, "no AMI terms", "amiSelectorTerms minItems: 1", AMI, json!([]), (AMI, "minItems 1"))
            .and("spec.amiFamily", json!("Custom")),
        accept(Class, "30 AMI terms", "amiSelectorTerms maxItems: 30", AMI, many(json!({"name": "x"}), 30)),
        reject(
            Class,
            "31 AMI terms",
            "amiSelectorTerms maxItems: 30",
            AMI,
            many(json!({"name": "x"}), 31),
            (AMI, "maxItems 30"),
        ),
        reject(Class, "empty AMI term", at_least, AMI, json!([{"owner": "self"}]), (AMI, at_least)),
        accept(Class, "AMI term with empty tags", "has(x.tags) holds for tags: {}", AMI, json!([{"tags": {}}])),
        accept(Class, "AMI by id", "id pattern ami-[0-9a-z]+", AMI, json!([by_id])),
        accept(
            Class,
            "AMI id searched, not anchored",
            "id pattern ami-[0-9a-z]+ (unanchored)",
            AMI,
            json!([{"id": "x-ami-0abc"}]),
        ),
        accept(
            Class,
            "AMI id with a matching start",
            "id pattern ami-[0-9a-z]+ (unanchored)",
            AMI,
            json!([{"id": "ami-0ABC"}]),
        ),
        reject(
            Class,
            "AMI id uppercase",
            "id pattern ami-[0-9a-z]+",
            AMI,
            json!([{"id": "ami-ABC"}]),
            (AMI, "ami-[0-9a-z]+"),
        ),
        reject(
            Class,
            "AMI id with owner",
            id_alone,
            AMI,
            json!([{"id": "ami-0abc", "owner": "self"}]),
            (AMI, id_alone),
        ),
        accept(Class, "AMI name with owner", id_alone, AMI, json!([{"name": "my-ami-*", "owner": "self"}])),
        reject(
            Class,
            "alias with owner",
            alias_alone,
            AMI,
            json!([{"alias": "al2023@latest", "owner": "amazon"}]),
            (AMI, alias_alone),
        ),
        reject(
            Class,
            "alias with name",
            alias_alone,
            AMI,
            json!([{"alias": "al2023@latest", "name": "x"}]),
            (AMI, alias_alone),
        ),
        accept(
            Class,
            "alias with ssmParameter",
            "the alias rule does not name ssmParameter",
            AMI,
            json!([{"alias": "al2023@latest", "ssmParameter": "/x"}]),
        ),
        reject(
            Class,
            "alias and another term",
            "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
            AMI,
            json!([{"alias": "al2023@latest"}, by_id]),
            (AMI, "combination of other amiSelectorTerms"),
        ),
        reject(
            Class,
            "alias of 31 characters",
            "alias maxLength: 30",
            AMI,
            json!([{"alias": format!("al2023@v{}", "1".repeat(23))}]),
            (AMI, "maxLength 30"),
        ),
        reject(
            Class,
            "alias without version",
            "'alias' is improperly formatted, must match the format 'family@version'",
            AMI,
            json!([{"alias": "al2023@"}]),
            (AMI, "must match the format 'family@version'"),
        ),
        reject(
            Class,
            "alias family unknown",
            "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'",
            AMI,
            json!([{"alias": "ubuntu@latest"}]),
            (AMI, "family is not supported"),
        ),
        accept(
            Class,
            "bottlerocket pinned",
            "windows families may only specify version 'latest'",
            AMI,
            json!([{"alias": "bottlerocket@v1.20.4"}]),
        )
        .and("spec.amiFamily", json!(null)),
        reject(
            Class,
            "windows pinned",
            "windows families may only specify version 'latest'",
            AMI,
            json!([{"alias": "windows2022@v1"}]),
            (AMI, "may only specify version 'latest'"),
        )
        .and("spec.amiFamily", json!(null)),
        reject(
            Class,
            "AMI tags of 21",
            "tags maxProperties: 20",
            AMI,
            json!([{"tags": tags(21)}]),
            (AMI, "maxProperties 20"),
        ),
        reject(
            Class,
            "AMI tag with empty value",
            "empty tag keys or values aren't supported",
            AMI,
            json!([{"tags": {"team": ""}}]),
            (AMI, "empty tag keys or values aren't supported"),
        ),
        // amiFamily and alias
        accept(
            Class,
            "alias without amiFamily",
            "must specify amiFamily if amiSelectorTerms does not contain an alias",
            "spec.amiFamily",
            json!(null),
        ),
        reject(
            Class,
            "no alias, no amiFamily",
            "must specify amiFamily if amiSelectorTerms does not contain an alias",
            AMI,
            json!([by_id]),
            ("spec", "must specify amiFamily"),
        )
        .and("spec.amiFamily", json!(null)),
        accept(
            Class,
            "Custom with an alias",
            "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias",
            "spec.amiFamily",
            json!("Custom"),
        ),
        reject(
            Class,
            "AL2 alias, AL2023 family",
            "if set, amiFamily must be 'AL2' or 'Custom' when using an AL2 alias",
            AMI,
            json!([{"alias": "al2@latest"}]),
            ("spec.amiFamily", "must be 'AL2' or 'Custom' when using an AL2 alias"),
        ),
        reject(
            Class,
            "AL2023 alias, AL2 family",
            "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias",
            "spec.amiFamily",
            json!("AL2"),
            ("spec.amiFamily", "must be 'AL2023' or 'Custom' when using an AL2023 alias"),
        ),
        reject(
            Class,
            "Bottlerocket alias, AL2023 family",
            "if set, amiFamily must be 'Bottlerocket' or 'Custom' when using a Bottlerocket alias",
            AMI,
            json!([{"alias": "bottlerocket@latest"}]),
            ("spec.amiFamily", "must be 'Bottlerocket' or 'Custom'"),
        ),
        reject(
            Class,
            "Windows2019 alias, AL2023 family",
            "if set, amiFamily must be 'Windows2019' or 'Custom' when using a Windows2019 alias",
            AMI,
            json!([{"alias": "windows2019@latest"}]),
            ("spec.amiFamily", "must be 'Windows2019' or 'Custom'"),
        ),
        reject(
            Class,
            "Windows2022 alias, AL2023 family",
            "if set, amiFamily must be 'Windows2022' or 'Custom' when using a Windows2022 alias",
            AMI,
            json!([{"alias": "windows2022@latest"}]),
            ("spec.amiFamily", "must be 'Windows2022' or 'Custom'"),
        ),
        reject(
            Class,
            "Windows2025 alias, AL2023 family",
            "if set, amiFamily must be 'Windows2025' or 'Custom' when using a Windows2025 alias",
            AMI,
            json!([{"alias": "windows2025@latest"}]),
            ("spec.amiFamily", "must be 'Windows2025' or 'Custom'"),
        ),
        accept(
            Class,
            "Windows2025 alias and family",
            "if set, amiFamily must be 'Windows2025' or 'Custom' when using a Windows2025 alias",
            AMI,
            json!([{"alias": "windows2025@latest"}]),
        )
        .and("spec.amiFamily", json!("Windows2025")),
        reject(
            Class,
            "amiFamily Ubuntu",
            "amiFamily enum: AL2, AL2023, Bottlerocket, Custom, Windows2019, Windows2022, Windows2025",
            "spec.amiFamily",
            json!("Ubuntu"),
            ("spec.amiFamily", ""),
        ),
    ]
}

#[test]
fn nodeclass_ami_terms_follow_the_crd() {
    run(&cases());
}
