//! On-demand prices from a price file: CSV with `instance_type,usd_per_hour`.
//!
//! EC2 does not return on-demand prices; the AWS Pricing API does, but only from us-east-1 and
//! ap-south-1 and with a large response. A price file, refreshed out of band, keeps the daemon
//! free of that dependency and works the same against any EC2 endpoint.

use std::collections::HashMap;
use std::path::Path;

use super::CloudError;

/// Reads the price file; rows with a missing or non-positive price are rejected with their line.
pub fn read(path: &Path) -> Result<HashMap<String, f64>, CloudError> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| CloudError::InvalidConfig(format!("price file {}: {e}", path.display())))?;
    let mut out = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| CloudError::InvalidConfig(format!("price file {}: {e}", path.display())))?;
        let line = i + 2;
        let (Some(name), Some(price)) = (row.get(0), row.get(1)) else {
            return Err(CloudError::InvalidConfig(format!(
                "price file {}:{line}: expected instance_type,usd_per_hour",
                path.display()
            )));
        };
        let price: f64 = price.trim().parse().ok().filter(|p: &f64| *p > 0.0 && p.is_finite()).ok_or_else(|| {
            CloudError::InvalidConfig(format!("price file {}:{line}: `{price}` is not a price", path.display()))
        })?;
        out.insert(name.trim().to_string(), price);
    }
    Ok(out)
}
