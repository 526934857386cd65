# The "prepare the S3 bucket and IAM policies" step: the kOps state-store bucket (versioned, so
# every InstanceGroup write capstan makes can be rolled back) and the IAM role capstan's service
# account assumes through IRSA, with ../aws/iam-policy.json as its only policy.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "cluster_name" {
  description = "The kOps cluster name, e.g. dev.example.com"
  type        = string
}

variable "state_store_bucket" {
  description = "The kOps state-store bucket"
  type        = string
}

variable "oidc_provider_arn" {
  description = "The IAM OIDC provider kOps created for the cluster's service-account issuer"
  type        = string
}

variable "oidc_issuer" {
  description = "The issuer host and path, without https:// (e.g. example-oidc-discovery.s3.us-east-1.amazonaws.com/dev.example.com)"
  type        = string
}

variable "namespace" {
  type    = string
  default = "capstan"
}

variable "service_account" {
  type    = string
  default = "capstan"
}

resource "aws_s3_bucket" "state_store" {
  bucket = var.state_store_bucket
}

resource "aws_s3_bucket_versioning" "state_store" {
  bucket = aws_s3_bucket.state_store.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state_store" {
  bucket = aws_s3_bucket.state_store.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "state_store" {
  bucket                  = aws_s3_bucket.state_store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
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
  name               = "capstan-${var.cluster_name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "capstan" {
  name = "capstan"
  role = aws_iam_role.capstan.id
  policy = templatefile("${path.module}/../aws/iam-policy.json", {
    cluster_name       = var.cluster_name
    state_store_bucket = var.state_store_bucket
  })
}

output "role_arn" {
  description = "Put this in the ServiceAccount's eks.amazonaws.com/role-arn annotation"
  value       = aws_iam_role.capstan.arn
}
