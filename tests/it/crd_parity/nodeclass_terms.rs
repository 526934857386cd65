//! EC2NodeClass subnet, security group and capacity reservation selector terms.

use serde_json::{Value, json};

use super::Base::Class;
use super::{Case, accept, reject, run};

const SUBNET: &str = "spec.subnetSelectorTerms";
const SG: &str = "spec.securityGroupSelectorTerms";
const CR: &str = "spec.capacityReservationSelectorTerms";

fn tags(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
}

fn many(term: Value, n: usize) -> Value {
    json!(vec![term; n])
}

fn cases() -> Vec<Case> {
    vec![
        // subnets
        reject(
            Class,
            "no subnet terms",
            "subnetSelectorTerms cannot be empty",
            SUBNET,
            json!([]),
            (SUBNET, "subnetSelectorTerms cannot be empty"),
        ),
        reject(
            Class,
            "31 subnet terms",
            "subnetSelectorTerms maxItems: 30",
            SUBNET,
            many(json!({"id": "subnet-1"}), 31),
            (SUBNET, "maxItems 30"),
        ),
        reject(
            Class,
            "subnet term empty",
            "expected at least one, got none, ['tags', 'id']",
            SUBNET,
            json!([{}]),
            (SUBNET, "got none, ['tags', 'id']"),
        ),
        reject(
            Class,
            "subnet id",
            "id pattern subnet-[0-9a-z]+",
            SUBNET,
            json!([{"id": "sn-0abc"}]),
            (SUBNET, "subnet-[0-9a-z]+"),
        ),
        reject(
            Class,
            "subnet by name",
            "subnet terms have only id and tags",
            SUBNET,
            json!([{"name": "private"}]),
            (SUBNET, "unknown field `name`"),
        ),
        reject(
            Class,
            "subnet by cidr",
            "subnet terms have only id and tags",
            SUBNET,
            json!([{"cidr": "10.0.0.0/16"}]),
            (SUBNET, "unknown field `cidr`"),
        ),
        reject(
            Class,
            "every subnet term combines",
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
            SUBNET,
            json!([{"id": "subnet-1", "tags": {"a": "b"}}]),
            (SUBNET, "in a subnet selector term"),
        ),
        accept(
            Class,
            "one subnet term combines",
            "!self.all(x, has(x.id) && has(x.tags)) holds when one term does not combine",
            SUBNET,
            json!([{"id": "subnet-1", "tags": {"a": "b"}}, {"id": "subnet-2"}]),
        ),
        reject(
            Class,
            "subnet tags of 21",
            "tags maxProperties: 20",
            SUBNET,
            json!([{"tags": tags(21)}]),
            (SUBNET, "maxProperties 20"),
        ),
        reject(
            Class,
            "subnet tag empty key",
            "empty tag keys or values aren't supported",
            SUBNET,
            json!([{"tags": {"": "x"}}]),
            (SUBNET, "empty tag keys or values"),
        ),
        // security groups
        reject(
            Class,
            "no security group terms",
            "securityGroupSelectorTerms cannot be empty",
            SG,
            json!([]),
            (SG, "securityGroupSelectorTerms cannot be empty"),
        ),
        reject(
            Class,
            "31 security group terms",
            "securityGroupSelectorTerms maxItems: 30",
            SG,
            many(json!({"name": "x"}), 31),
            (SG, "maxItems 30"),
        ),
        reject(
            Class,
            "security group term empty",
            "expected at least one, got none, ['tags', 'id', 'name']",
            SG,
            json!([{}]),
            (SG, "got none, ['tags', 'id', 'name']"),
        ),
        accept(
            Class,
            "security group by name",
            "security group terms may select by name",
            SG,
            json!([{"name": "nodes"}]),
        ),
        reject(
            Class,
            "security group id",
            "id pattern sg-[0-9a-z]+",
            SG,
            json!([{"id": "0abc"}]),
            (SG, "sg-[0-9a-z]+"),
        ),
        reject(
            Class,
            "every sg term combines id",
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            SG,
            json!([{"id": "sg-1", "name": "x"}]),
            (SG, "'id' is mutually exclusive"),
        ),
        reject(
            Class,
            "every sg term combines name",
            "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            SG,
            json!([{"name": "x", "tags": {"a": "b"}}]),
            (SG, "'name' is mutually exclusive"),
        ),
        accept(
            Class,
            "one sg term combines",
            "!self.all(...) holds when one term does not combine",
            SG,
            json!([{"id": "sg-1", "name": "x"}, {"id": "sg-2"}]),
        ),
        reject(
            Class,
            "sg by cidr",
            "security group terms have only id, name and tags",
            SG,
            json!([{"cidr": "10.0.0.0/16"}]),
            (SG, "unknown field `cidr`"),
        ),
        // capacity reservations
        accept(Class, "reservation by id", "id pattern ^cr-[0-9a-z]+$", CR, json!([{"id": "cr-0abc"}])),
        reject(
            Class,
            "reservation id",
            "id pattern ^cr-[0-9a-z]+$",
            CR,
            json!([{"id": "x-cr-0abc"}]),
            (CR, "capacity reservation id"),
        ),
        reject(
            Class,
            "every reservation term combines",
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
            CR,
            json!([{"id": "cr-1", "instanceMatchCriteria": "open"}]),
            (CR, "cannot be set along with other fields"),
        ),
        accept(
            Class,
            "one reservation term combines",
            "!self.all(...) holds when one term does not combine",
            CR,
            json!([{"id": "cr-1", "ownerID": "123456789012"}, {"id": "cr-2"}]),
        ),
        reject(
            Class,
            "reservation criteria",
            "instanceMatchCriteria enum: open, targeted",
            CR,
            json!([{"instanceMatchCriteria": "closed"}]),
            (CR, "not one of open, targeted"),
        ),
        accept(
            Class,
            "reservation open",
            "instanceMatchCriteria enum: open, targeted",
            CR,
            json!([{"instanceMatchCriteria": "open"}]),
        ),
        reject(
            Class,
            "reservation owner",
            "ownerID pattern ^[0-9]{12}$",
            CR,
            json!([{"tags": {"a": "b"}, "ownerID": "12345"}]),
            (CR, "account id"),
        ),
        reject(
            Class,
            "reservation tags of 21",
            "tags maxProperties: 20",
            CR,
            json!([{"tags": tags(21)}]),
            (CR, "maxProperties 20"),
        ),
        reject(
            Class,
            "reservation tag empty value",
            "empty tag keys or values aren't supported",
            CR,
            json!([{"tags": {"a": ""}}]),
            (CR, "empty tag keys or values"),
        ),
        reject(
            Class,
            "empty reservation list",
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term (!self.all is false for [])",
            CR,
            json!([]),
            (CR, "capacity reservation selector term"),
        ),
        reject(
            Class,
            "31 reservation terms",
            "capacityReservationSelectorTerms maxItems: 30",
            CR,
            many(json!({"id": "cr-1"}), 31),
            (CR, "at most 30"),
        ),
    ]
}

#[test]
fn nodeclass_selector_terms_follow_the_crd() {
    run(&cases());
}
