# The IAM side of installing capstan on one kOps cluster: the role the `capstan` ServiceAccount
# assumes through IRSA, with ../aws/iam-policy.json (rendered for this cluster and bucket) as its
# only policy. The state-store bucket is kOps's own and already exists: it is only read here.
#
# Use this or the kOps way (../kops/cluster-spec-snippet.yaml, iam.serviceAccountExternalPermissions),
# not both. kOps must publish the service-account issuer (serviceAccountIssuerDiscovery with
# enableAWSOIDCProvider: true), which gives the OIDC provider this role trusts.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "cluster_name" {
  description = "The kOps cluster name, e.g. dev.example.com"
  type        = string
}

variable "state_store_bucket" {
  description = "The kOps state-store bucket (KOPS_STATE_STORE without s3://); it must exist"
  type        = string
}

variable "oidc_provider_arn" {
  description = "The IAM OIDC provider kOps created for the cluster's service-account issuer (arn:aws:iam::<account>:oidc-provider/<issuer>)"
  type        = string
}

variable "oidc_issuer" {
  description = "The issuer host and path, without https:// (serviceAccountIssuerDiscovery.discoveryStore's bucket URL, e.g. example-oidc-discovery.s3.us-east-1.amazonaws.com/dev.example.com)"
  type        = string
}

variable "namespace" {
  description = "The namespace capstan runs in"
  type        = string
  default     = "capstan"
}

variable "service_account" {
  description = "capstan's ServiceAccount"
  type        = string
  default     = "capstan"
}

data "aws_s3_bucket" "state_store" {
  bucket = var.state_store_bucket
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "capstan" {
  name               = "capstan.${var.cluster_name}"
  description        = "capstan on the kOps cluster ${var.cluster_name} (IRSA: ${var.namespace}/${var.service_account})"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "capstan" {
  name = "capstan"
  role = aws_iam_role.capstan.id
  policy = templatefile("${path.module}/../aws/iam-policy.json", {
    cluster_name       = var.cluster_name
    state_store_bucket = data.aws_s3_bucket.state_store.bucket
  })
}

output "role_arn" {
  description = "Put this in the ServiceAccount's eks.amazonaws.com/role-arn annotation (the overlay's serviceaccount.yaml)"
  value       = aws_iam_role.capstan.arn
}
