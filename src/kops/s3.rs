//! The store in an S3 bucket, `s3://bucket[/prefix]`: creates send `If-None-Match: *`, updates
//! and deletes `If-Match: <etag>`, so S3 itself refuses a write over a version we did not read
//! (412 Precondition Failed, or 409 when two conditional writes race).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::store::{Object, StateStore, StoreError, valid_key};
use crate::cloud::aws::{Endpoint, sdk_config};

/// Where S3 is. Region, endpoint and credentials come from the standard AWS chain unless set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), for S3-compatible endpoints.
    pub path_style: bool,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
    url: String,
}

/// Splits `s3://bucket[/prefix]` into bucket and prefix (empty, or ending with `/`).
pub fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| StoreError::Io(format!("{url} is not an s3:// URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::Io(format!("{url}: no bucket name; write s3://bucket[/prefix]")));
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    Ok((bucket.to_string(), prefix))
}

impl S3Store {
    /// A store on `s3://bucket[/prefix]` with a client from the AWS chain and `options`.
    pub async fn connect(url: &str, options: &S3Options) -> Result<S3Store, StoreError> {
        let endpoint = Endpoint { url: options.endpoint.clone(), region: options.region.clone() };
        let shared = sdk_config(&endpoint).await;
        let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.path_style).build();
        S3Store::new(aws_sdk_s3::Client::from_conf(config), url)
    }

    pub fn new(client: aws_sdk_s3::Client, url: &str) -> Result<S3Store, StoreError> {
        let (bucket, prefix) = parse_url(url)?;
        Ok(S3Store { client, bucket, prefix, url: url.to_string() })
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn full(&self, key: &str) -> Result<String, StoreError> {
        valid_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Maps an SDK error: 412 and 409 (a racing conditional write) are `PreconditionFailed`,
    /// 404 is `NotFound`; anything else says which call, which store and what to check.
    fn error<E: ProvideErrorMetadata + std::fmt::Debug>(
        &self,
        call: &str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> StoreError {
        let status = err.raw_response().map(|r| r.status().as_u16());
        if let SdkError::ServiceError(service) = &err {
            let e = service.err();
            let code = e.code().unwrap_or_default();
            match (status, code) {
                (Some(412), _) | (Some(409), _) | (_, "PreconditionFailed" | "ConditionalRequestConflict") => {
                    return StoreError::PreconditionFailed(key.to_string());
                }
                (_, "NoSuchBucket") => {
                    return StoreError::Io(format!(
                        "{call} {key}: bucket `{}` does not exist; check the state store URL {}",
                        self.bucket, self.url
                    ));
                }
                (Some(404), _) | (_, "NoSuchKey") => return StoreError::NotFound(key.to_string()),
                (_, "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken") => {
                    return StoreError::Io(format!(
                        "{call} {key} in {}: {code}; check the AWS credentials and that the IAM policy allows {} on the bucket",
                        self.url,
                        iam_action(call)
                    ));
                }
                _ => {}
            }
            return StoreError::Io(format!(
                "{call} {key} in {}: {code}: {}",
                self.url,
                e.message().unwrap_or_default()
            ));
        }
        let text = format!("{err:?}");
        if crate::cloud::aws::lacks_credentials(&text) {
            return StoreError::Io(format!(
                "{call} {key} in {}: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or IRSA",
                self.url
            ));
        }
        let text: String = text.chars().take(300).collect();
        StoreError::Io(format!("{call} {key} in {}: {text}; check the S3 endpoint, region and network", self.url))
    }
}

impl StateStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let full = self.full(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(&full).send().await {
            Ok(out) => out,
            Err(e) => {
                return match self.error("GetObject", key, e) {
                    StoreError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.map_err(|e| StoreError::Io(format!("GetObject {key}: {e}")))?;
        Ok(Some(Object { bytes: body.into_bytes().to_vec(), etag }))
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let full = self.full(key)?;
        let put = self.client.put_object().bucket(&self.bucket).key(&full).if_none_match("*");
        let out =
            put.body(ByteStream::from(bytes.to_vec())).send().await.map_err(|e| self.error("PutObject", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn put_if_match(&self, key: &str, bytes: &[u8], etag: &str) -> Result<String, StoreError> {
        let full = self.full(key)?;
        let put = self.client.put_object().bucket(&self.bucket).key(&full).if_match(etag);
        let out =
            put.body(ByteStream::from(bytes.to_vec())).send().await.map_err(|e| self.error("PutObject", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), StoreError> {
        let full = self.full(key)?;
        let delete = self.client.delete_object().bucket(&self.bucket).key(&full).if_match(etag);
        delete.send().await.map_err(|e| self.error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.list_tagged(prefix).await?.into_iter().map(|(k, _)| k).collect())
    }

    async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call =
                self.client.list_objects_v2().bucket(&self.bucket).prefix(format!("{}{prefix}", self.prefix));
            if let Some(t) = &token {
                call = call.continuation_token(t);
            }
            let out = call.send().await.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in out.contents() {
                if let Some(k) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push((k.to_string(), object.e_tag().unwrap_or_default().to_string()));
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// The IAM action that allows an S3 call (a listing is `s3:ListBucket`).
fn iam_action(call: &str) -> String {
    match call {
        "ListObjectsV2" => "s3:ListBucket".into(),
        other => format!("s3:{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("s3://b").unwrap(), ("b".to_string(), String::new()));
        assert_eq!(parse_url("s3://b/").unwrap(), ("b".to_string(), String::new()));
        assert_eq!(parse_url("s3://b/p/q/").unwrap(), ("b".to_string(), "p/q/".to_string()));
        assert!(parse_url("s3:///p").is_err());
        assert!(parse_url("file:///p").is_err());
    }
}
