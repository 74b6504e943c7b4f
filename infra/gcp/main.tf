# Google Cloud side of the rise registry broker, `[registry] type = "gar"`
# (docs/google-artifact-registry.md). The broker keeps no Google secret: Google trusts its
# OpenID Connect issuer through a workload identity pool, and the IAM policy of each
# project's Artifact Registry repository names exactly one subject per access level:
#
#   principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/project:P:push  → roles/artifactregistry.writer
#   principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/project:P:pull  → roles/artifactregistry.reader
#
# Never principalSet://…/* (the whole pool) and never a binding above the repository:
# a token for project P then reaches repository P and nothing else, whatever the broker
# does. With impersonate_service_accounts = true the same subjects may instead impersonate
# one service account per (project, access), which holds the repository role
# (`service_account` in the broker's config).
#
#   terraform init && terraform apply -var gcp_project=my-proj -var location=europe-west1 \
#     -var broker_issuer=https://broker.example.com -var 'projects=["my-app"]'
#
# Checked in the test command by tests/helpers/check_terraform.py (python-hcl2 + checkov).

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.gcp_project
}

variable "gcp_project" {
  description = "Google Cloud project id holding the pool and the repositories (registry.gcp_project)"
  type        = string
}

variable "location" {
  description = "Artifact Registry location, e.g. europe-west1 or us (registry.location)"
  type        = string
}

variable "broker_issuer" {
  description = "The broker's [oidc] issuer: https://host, no path, no trailing slash"
  type        = string
  validation {
    condition     = can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", var.broker_issuer))
    error_message = "broker_issuer must be https://host[:port] with no path, exactly the broker's [oidc] issuer."
  }
}

variable "jwks_json" {
  description = "Optional: the broker's JWKS inline (Google then never fetches it); null = Google fetches {issuer}/.well-known/openid-configuration"
  type        = string
  default     = null
}

variable "pool_id" {
  description = "Workload identity pool id"
  type        = string
  default     = "rise-broker"
}

variable "provider_id" {
  description = "Workload identity pool provider id"
  type        = string
  default     = "rise-broker"
}

variable "projects" {
  description = "Rise projects: one Docker repository each, named repository_prefix + project"
  type        = list(string)
  validation {
    # Artifact Registry repository ids: lower-case letters, digits and '-', starting with
    # a letter, ending with a letter or digit, at most 63 characters. Rise project names
    # may also contain '.' and '_' or start with a digit; such a project cannot have its
    # own repository (the broker answers 403 for it, naming the `repository` template).
    condition     = alltrue([for p in var.projects : can(regex("^[a-z]([a-z0-9-]*[a-z0-9])?$", p)) && length(p) <= 63])
    error_message = "Every project must be a valid Artifact Registry repository id: [a-z]([a-z0-9-]*[a-z0-9])?, at most 63 characters."
  }
}

variable "repository_prefix" {
  description = "Prefix of the repository ids (registry.repository = \"<prefix>{project}\"); \"\" = the project name"
  type        = string
  default     = ""
}

variable "impersonate_service_accounts" {
  description = "false: the federated subjects hold the repository roles directly (default). true: one service account per (project, access) holds them and the subject may impersonate it (registry.service_account)"
  type        = bool
  default     = false
}

variable "service_account_prefix" {
  description = "Service account ids are <prefix><project>-<access> (6-30 characters in all: projects of at most 30 - len(prefix) - 5 characters)"
  type        = string
  default     = "rise-"
}

locals {
  # One subject: the pool's name is projects/N/locations/global/workloadIdentityPools/POOL.
  subject     = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.broker.name}/subject"
  direct      = var.impersonate_service_accounts ? toset([]) : toset(var.projects)
  impersonate = var.impersonate_service_accounts ? toset(var.projects) : toset([])
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
  ])
  project            = var.gcp_project
  service            = each.value
  disable_on_destroy = false
}

resource "google_iam_workload_identity_pool" "broker" {
  project                   = var.gcp_project
  workload_identity_pool_id = var.pool_id
  display_name              = "rise registry broker"
  description               = "Tokens minted by the rise registry broker (sub = project:P:push|pull)"
  depends_on                = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "broker" {
  project                            = var.gcp_project
  workload_identity_pool_id          = google_iam_workload_identity_pool.broker.workload_identity_pool_id
  workload_identity_pool_provider_id = var.provider_id
  display_name                       = "rise registry broker"
  # google.subject = the broker's sub, at most 127 bytes ("project:" + 63 + ":push" = 76).
  attribute_mapping = {
    "google.subject" = "assertion.sub"
  }
  # Pool-level guard: only the broker's per-project subjects are ever accepted, whatever
  # else the issuer might sign.
  attribute_condition = "assertion.sub.startsWith('project:')"
  oidc {
    issuer_uri = var.broker_issuer
    # No allowed_audiences: Google then accepts exactly this provider's full resource name
    # (//iam.googleapis.com/projects/N/…/providers/X), the broker's default `audience`.
    jwks_json = var.jwks_json
  }
}

resource "google_artifact_registry_repository" "project" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption at rest; CMEK needs a Cloud KMS key and a grant to the Artifact Registry service agent, an operator choice outside the broker
  for_each      = toset(var.projects)
  project       = var.gcp_project
  location      = var.location
  repository_id = "${var.repository_prefix}${each.key}"
  format        = "DOCKER"
  description   = "rise project ${each.key} (pushed through the rise registry broker)"
  docker_config {
    immutable_tags = true
  }
  depends_on = [google_project_service.apis]
}

# Direct federation (default): the broker's subject itself holds the repository role.
resource "google_artifact_registry_repository_iam_member" "push" {
  for_each   = local.direct
  project    = var.gcp_project
  location   = var.location
  repository = google_artifact_registry_repository.project[each.key].name
  role       = "roles/artifactregistry.writer"
  member     = "${local.subject}/project:${each.key}:push"
}

resource "google_artifact_registry_repository_iam_member" "pull" {
  for_each   = local.direct
  project    = var.gcp_project
  location   = var.location
  repository = google_artifact_registry_repository.project[each.key].name
  role       = "roles/artifactregistry.reader"
  member     = "${local.subject}/project:${each.key}:pull"
}

# Impersonation variant: one service account per (project, access) holds the repository
# role; only that (project, access) subject may mint its tokens (generateAccessToken,
# lifetime = the broker's token_seconds, at most 3600 s without the org policy
# constraints/iam.allowServiceAccountCredentialLifetimeExtension).
resource "google_service_account" "push" {
  for_each     = local.impersonate
  project      = var.gcp_project
  account_id   = "${var.service_account_prefix}${each.key}-push"
  display_name = "rise broker: push ${each.key}"
  lifecycle {
    precondition {
      condition     = length("${var.service_account_prefix}${each.key}-push") <= 30
      error_message = "Service account ids are at most 30 characters: shorten service_account_prefix or keep impersonate_service_accounts = false for long project names."
    }
  }
}

resource "google_service_account" "pull" {
  for_each     = local.impersonate
  project      = var.gcp_project
  account_id   = "${var.service_account_prefix}${each.key}-pull"
  display_name = "rise broker: pull ${each.key}"
  lifecycle {
    precondition {
      condition     = length("${var.service_account_prefix}${each.key}-pull") <= 30
      error_message = "Service account ids are at most 30 characters: shorten service_account_prefix or keep impersonate_service_accounts = false for long project names."
    }
  }
}

resource "google_service_account_iam_member" "push_impersonation" {
  for_each           = local.impersonate
  service_account_id = google_service_account.push[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "${local.subject}/project:${each.key}:push"
}

resource "google_service_account_iam_member" "pull_impersonation" {
  for_each           = local.impersonate
  service_account_id = google_service_account.pull[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "${local.subject}/project:${each.key}:pull"
}

resource "google_artifact_registry_repository_iam_member" "push_service_account" {
  for_each   = local.impersonate
  project    = var.gcp_project
  location   = var.location
  repository = google_artifact_registry_repository.project[each.key].name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.push[each.key].email}"
}

resource "google_artifact_registry_repository_iam_member" "pull_service_account" {
  for_each   = local.impersonate
  project    = var.gcp_project
  location   = var.location
  repository = google_artifact_registry_repository.project[each.key].name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.pull[each.key].email}"
}

output "broker_config" {
  description = "The [registry] section for the broker (config/production.toml)"
  value = join("\n", compact([
    "[registry]",
    "type = \"gar\"",
    "location = \"${var.location}\"",
    "gcp_project = \"${var.gcp_project}\"",
    "workload_identity_provider = \"${google_iam_workload_identity_pool_provider.broker.name}\"",
    "repository = \"${var.repository_prefix}{project}\"",
    var.impersonate_service_accounts ? "service_account = \"${var.service_account_prefix}{project}-{access}@${var.gcp_project}.iam.gserviceaccount.com\"" : "",
  ]))
}

output "workload_identity_provider" {
  description = "registry.workload_identity_provider"
  value       = google_iam_workload_identity_pool_provider.broker.name
}

output "audience" {
  description = "The audience the broker's tokens carry (registry.audience default)"
  value       = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.broker.name}"
}
