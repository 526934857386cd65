//! The Pricing API's PriceList documents read into on-demand prices. Pure.
//!
//! Each document is a JSON string: the type at `product.attributes.instanceType`, the price at
//! `terms.OnDemand.<offer>.priceDimensions.<dimension>.pricePerUnit.USD` (a string), or `.CNY`
//! where there is no USD one (the China partition answers in yuan). A zero price is skipped; a
//! bad document is reported beside the prices, and the rest is read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

/// Why prices could not be read, or one document could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PricingError {
    /// A PriceList entry that is not a product document; it is skipped.
    #[error("price list document {index} is not a product document ({reason}); it is skipped")]
    Document {
        /// Its position in the answer (from 0, across pages and queries).
        index: usize,
        /// What the JSON parser said.
        reason: String,
    },
    /// A price that is not a number; the type is skipped (priced by the next source, if any).
    #[error("instance type {instance_type}: on-demand price `{value}` is not a number; the type is skipped")]
    Price {
        /// The instance type of the document.
        instance_type: String,
        /// The `pricePerUnit` string as answered (USD, or CNY in the China partition).
        value: String,
    },
    /// No credentials in the AWS chain.
    #[error(
        "AWS Pricing API: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or IRSA (the role needs pricing:GetProducts)"
    )]
    Unauthorized,
    /// The call failed (network, throttling, a refusal): the caller keeps the prices it has.
    #[error(
        "AWS Pricing API GetProducts ({query}): {message}; check the network, pricing:GetProducts in the IAM policy and aws.pricing.endpoint"
    )]
    Api {
        /// Which of the two queries failed.
        query: &'static str,
        /// What the SDK said, without key ids.
        message: String,
    },
}

#[derive(Deserialize)]
struct Document {
    product: Product,
    #[serde(default)]
    terms: Terms,
}

#[derive(Deserialize)]
struct Product {
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Default, Deserialize)]
struct Terms {
    #[serde(rename = "OnDemand", default)]
    on_demand: BTreeMap<String, Offer>,
}

#[derive(Deserialize)]
struct Offer {
    #[serde(rename = "priceDimensions", default)]
    dimensions: BTreeMap<String, Dimension>,
}

#[derive(Deserialize)]
struct Dimension {
    #[serde(rename = "pricePerUnit", default)]
    per_unit: BTreeMap<String, String>,
}

/// The currencies read, in order of preference: a dimension's USD price, else its CNY one.
pub const CURRENCIES: [&str; 2] = ["USD", "CNY"];

/// The instance type and on-demand price of one document; `None` for a document with no
/// instance type or no non-zero price. Of several non-zero prices (offers × dimensions) the
/// highest is taken: an estimate that errs high never makes a type look cheaper than it is.
pub fn document(text: &str, index: usize) -> Result<Option<(String, f64)>, PricingError> {
    Ok(priced(text, index)?.map(|(name, price, _)| (name, price)))
}

/// [`document`] with the currency of the price taken (one of [`CURRENCIES`]).
pub fn priced(text: &str, index: usize) -> Result<Option<(String, f64, &'static str)>, PricingError> {
    let doc: Document =
        serde_json::from_str(text).map_err(|e| PricingError::Document { index, reason: e.to_string() })?;
    let Some(name) = doc.product.attributes.get("instanceType").and_then(|v| v.as_str()).filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    let mut best: Option<(f64, &'static str)> = None;
    for dim in doc.terms.on_demand.values().flat_map(|o| o.dimensions.values()) {
        let Some((currency, value)) = CURRENCIES.iter().find_map(|c| Some((*c, dim.per_unit.get(*c)?))) else {
            continue;
        };
        let price: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| PricingError::Price { instance_type: name.to_string(), value: value.clone() })?;
        if price > 0.0 && best.is_none_or(|(b, _)| price > b) {
            best = Some((price, currency));
        }
    }
    Ok(best.map(|(p, currency)| (name.to_string(), p, currency)))
}

/// Prices read so far and what could not be used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// USD per hour by instance type.
    pub prices: HashMap<String, f64>,
    /// Documents read.
    pub documents: usize,
    /// Documents skipped, with why.
    pub errors: Vec<PricingError>,
    /// The currencies of the prices taken (`USD`; `CNY` in the China partition).
    pub currencies: BTreeSet<&'static str>,
}

impl Parsed {
    /// Adds a page of PriceList documents. Pure. A type listed twice keeps its higher price.
    pub fn add(&mut self, docs: &[String]) {
        for text in docs {
            let index = self.documents;
            self.documents += 1;
            match priced(text, index) {
                Ok(Some((name, price, currency))) => {
                    self.currencies.insert(currency);
                    let slot = self.prices.entry(name).or_insert(price);
                    *slot = slot.max(price);
                }
                Ok(None) => {}
                Err(e) => self.errors.push(e),
            }
        }
    }
}

/// The prices of a list of PriceList documents. Pure.
pub fn parse(docs: &[String]) -> Parsed {
    let mut out = Parsed::default();
    out.add(docs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A product document in the Pricing API's shape: `offers` of (dimension USD strings).
    fn doc(instance_type: &str, offers: &[&[&str]]) -> String {
        let mut on_demand = serde_json::Map::new();
        for (i, dims) in offers.iter().enumerate() {
            let mut dimensions = serde_json::Map::new();
            for (j, usd) in dims.iter().enumerate() {
                dimensions.insert(
                    format!("OFFER{i}.JRTCKXETXF.6YS6EN2CT{j}"),
                    serde_json::json!({"unit": "Hrs", "pricePerUnit": {"USD": usd}, "description": "per hour"}),
                );
            }
            on_demand.insert(format!("OFFER{i}.JRTCKXETXF"), serde_json::json!({"priceDimensions": dimensions}));
        }
        serde_json::json!({
            "product": {"productFamily": "Compute Instance", "attributes": {"instanceType": instance_type, "regionCode": "eu-west-1"}, "sku": "SKU"},
            "serviceCode": "AmazonEC2",
            "terms": {"OnDemand": on_demand, "Reserved": {}},
            "version": "20260101",
        })
        .to_string()
    }

    #[test]
    fn several_offers_and_dimensions_give_the_highest_non_zero_price() {
        let parsed = parse(&[doc("m6i.large", &[&["0.0000000000", "0.0960000000"], &["0.0950000000"]])]);
        assert_eq!(parsed.prices.get("m6i.large"), Some(&0.096));
        assert!(parsed.errors.is_empty());
        assert_eq!(parsed.documents, 1);
    }

    #[test]
    fn a_zero_price_is_skipped_and_a_type_without_one_is_left_out() {
        let parsed = parse(&[doc("t3.nano", &[&["0.0000000000"]]), doc("c6i.large", &[&["0.085"]])]);
        assert_eq!(parsed.prices.len(), 1, "{:?}", parsed.prices);
        assert!(!parsed.prices.contains_key("t3.nano"));
        assert!(parsed.errors.is_empty());
    }

    #[test]
    fn bare_metal_documents_are_read_like_the_others() {
        let metal =
            doc("m5.metal", &[&["4.6080000000"]]).replace("\"Compute Instance\"", "\"Compute Instance (bare metal)\"");
        let parsed = parse(&[metal, doc("m5.large", &[&["0.096"]])]);
        assert_eq!(parsed.prices.get("m5.metal"), Some(&4.608));
        assert_eq!(parsed.prices.get("m5.large"), Some(&0.096));
    }

    #[test]
    fn a_garbage_price_is_an_error_naming_the_type_and_the_rest_is_read() {
        let parsed = parse(&[doc("r6i.large", &[&["twelve cents"]]), doc("m6i.large", &[&["0.096"]])]);
        assert_eq!(parsed.prices.get("m6i.large"), Some(&0.096));
        assert!(!parsed.prices.contains_key("r6i.large"));
        let text = parsed.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        assert!(text.contains("r6i.large") && text.contains("`twelve cents`"), "{text}");
    }

    #[test]
    fn a_document_that_is_not_json_is_named_by_position() {
        let parsed = parse(&[doc("m6i.large", &[&["0.096"]]), "{not json".to_string()]);
        assert_eq!(parsed.prices.len(), 1);
        assert!(matches!(&parsed.errors[..], [PricingError::Document { index: 1, .. }]), "{:?}", parsed.errors);
    }

    #[test]
    fn a_type_listed_twice_keeps_the_higher_price() {
        let mut parsed = parse(&[doc("m6i.large", &[&["0.096"]])]);
        parsed.add(&[doc("m6i.large", &[&["0.1"]]), doc("m6i.large", &[&["0.09"]])]);
        assert_eq!(parsed.prices.get("m6i.large"), Some(&0.1));
        assert_eq!(parsed.documents, 3);
    }

    #[test]
    fn a_yuan_price_is_read_where_there_is_no_dollar_one() {
        let cny = doc("m6i.large", &[&["0.6930000000"]]).replace("\"USD\"", "\"CNY\"");
        let parsed = parse(&[cny]);
        assert_eq!(parsed.prices.get("m6i.large"), Some(&0.693));
        assert_eq!(parsed.currencies, BTreeSet::from(["CNY"]));
        let both = doc("c6i.large", &[&["0.085"]]).replace("\"USD\":\"0.085\"", "\"CNY\":\"9.9\",\"USD\":\"0.085\"");
        let parsed = parse(&[both]);
        assert_eq!(parsed.prices.get("c6i.large"), Some(&0.085), "USD first");
        assert_eq!(parsed.currencies, BTreeSet::from(["USD"]));
    }
}
