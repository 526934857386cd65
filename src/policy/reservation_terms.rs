//! The rules Karpenter's EC2NodeClass schema sets on `capacityReservationSelectorTerms`: at most
//! 30 terms; each selects by `id` (`cr-` and lowercase letters or digits) alone, or by `tags`
//! and/or `instanceMatchCriteria` with an optional 12-digit `ownerID`.

use super::nodeclass::CapacityReservationSelectorTerm;

/// Most terms Karpenter accepts.
pub const MAX_TERMS: usize = 30;

/// One broken rule: the field, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field (`spec.capacityReservationSelectorTerms[2].id`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: &'static str,
}

fn is_id(id: &str) -> bool {
    id.strip_prefix("cr-")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
}

/// The rules `terms` break, in field order.
pub fn problems(terms: &[CapacityReservationSelectorTerm]) -> Vec<Problem> {
    let field = "spec.capacityReservationSelectorTerms";
    let mut out = Vec::new();
    let mut problem = |field: String, message: String, hint| out.push(Problem { field, message, hint });
    if terms.len() > MAX_TERMS {
        problem(field.into(), format!("{} terms; at most {MAX_TERMS} are allowed", terms.len()), "merge terms by tags");
    }
    for (i, t) in terms.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match &t.id {
            Some(id) if !is_id(id) => problem(
                format!("{at}.id"),
                format!("`{id}` is not a capacity reservation id"),
                "write the id as EC2 shows it: cr- followed by lowercase letters and digits",
            ),
            Some(_) if !t.tags.is_empty() || t.owner_id.is_some() => {
                problem(at.clone(), "id cannot be combined with tags or ownerID".into(), "use id alone")
            }
            None if t.tags.is_empty() && t.instance_match_criteria.is_none() => problem(
                at.clone(),
                "the term selects nothing".into(),
                "give it an id, or tags or instanceMatchCriteria (and an ownerID)",
            ),
            _ => {}
        }
        if let Some(owner) = t.owner_id.as_ref().filter(|o| o.len() != 12 || !o.bytes().all(|b| b.is_ascii_digit())) {
            problem(
                format!("{at}.ownerID"),
                format!("`{owner}` is not an AWS account id"),
                "write the 12-digit account id",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(id: Option<&str>, tags: &[(&str, &str)], owner: Option<&str>) -> CapacityReservationSelectorTerm {
        CapacityReservationSelectorTerm {
            id: id.map(str::to_string),
            owner_id: owner.map(str::to_string),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn ids_tags_and_owners_follow_karpenters_rules() {
        let good = [term(Some("cr-0123abc"), &[], None), term(None, &[("team", "ml")], Some("123456789012"))];
        assert_eq!(problems(&good), vec![]);
        let bad = [
            term(Some("cr-ABC"), &[], None),
            term(Some("cr-1"), &[("a", "b")], None),
            term(None, &[], None),
            term(None, &[("a", "b")], Some("12345")),
        ];
        let fields: Vec<String> = problems(&bad).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "spec.capacityReservationSelectorTerms[0].id",
                "spec.capacityReservationSelectorTerms[1]",
                "spec.capacityReservationSelectorTerms[2]",
                "spec.capacityReservationSelectorTerms[3].ownerID",
            ]
        );
        let many = vec![term(Some("cr-1"), &[], None); 31];
        assert_eq!(problems(&many)[0].field, "spec.capacityReservationSelectorTerms");
    }
}
