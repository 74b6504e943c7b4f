# Azure side of the rise registry broker, `[registry] type = "acr"`
# (docs/azure-container-registry.md). The broker keeps no Azure secret: each
# (project, access) has its own user-assigned managed identity whose one federated
# identity credential trusts exactly the broker's token for it
# (iss = the broker's [oidc] issuer, sub = project:P:push|pull, aud = api://AzureADTokenExchange),
# and whose one role assignment on the registry carries an ABAC condition naming that
# project's repository. The registry runs in the "RBAC Registry + ABAC Repository
# Permissions" mode, where a role assignment's condition can name repositories (and where
# AcrPull/AcrPush are not honoured at all).
#
#   terraform init && terraform apply -var resource_group_name=rise -var registry_name=riseregistry \
#     -var broker_issuer=https://broker.example.com -var 'projects=["my-app"]'
#   terraform output -raw broker_config    # the [registry] section, client_ids included
#
# Checked in the test command by tests/helpers/check_terraform.py (python-hcl2 + checkov).

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # role_assignment_mode on azurerm_container_registry arrived in 4.81.0.
      version = ">= 4.81.0, < 5.0"
    }
  }
}

provider "azurerm" {
  features {}
}

variable "resource_group_name" {
  description = "Existing resource group for the registry and the identities"
  type        = string
}

variable "registry_name" {
  description = "Container registry name (5-50 alphanumerics); the login server is <name>.azurecr.io (registry.registry_url)"
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9]{5,50}$", var.registry_name))
    error_message = "registry_name must be 5-50 letters and digits."
  }
}

variable "sku" {
  description = "Basic, Standard or Premium (ABAC repository permissions work on every SKU)"
  type        = string
  default     = "Standard"
}

variable "broker_issuer" {
  description = "The broker's [oidc] issuer, exactly (Entra compares it character for character): https://host, no path, no trailing slash"
  type        = string
  validation {
    condition     = can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", var.broker_issuer))
    error_message = "broker_issuer must be https://host[:port] with no path, exactly the broker's [oidc] issuer."
  }
}

variable "projects" {
  description = "Rise projects: each gets a push and a pull identity for the repository <namespace/>project"
  type        = list(string)
  validation {
    condition     = alltrue([for p in var.projects : can(regex("^[a-z0-9]+([._-][a-z0-9]+)*$", p)) && length(p) <= 63])
    error_message = "Every project must be a valid rise project name: [a-z0-9]+([._-][a-z0-9]+)*, at most 63 characters."
  }
}

variable "namespace" {
  description = "registry.namespace: repositories are <namespace>/<project> (\"\" = <project>)"
  type        = string
  default     = ""
}

data "azurerm_resource_group" "broker" {
  name = var.resource_group_name
}

data "azurerm_client_config" "current" {}

locals {
  # One entry per (project, access): "my-app:push" => {...}.
  identities = {
    for pair in setproduct(var.projects, ["push", "pull"]) : "${pair[0]}:${pair[1]}" => {
      project    = pair[0]
      access     = pair[1]
      repository = var.namespace == "" ? pair[0] : "${var.namespace}/${pair[0]}"
    }
  }
  # ABAC conditions (MicrosoftDocs "container-registry-rbac-abac-repository-permissions"):
  # "(!ActionMatches{a1} AND !ActionMatches{a2} ...) OR repository == X". Every data action
  # the role grants must be listed, or that action stays granted on every repository.
  # Reader grants content/read and metadata/read; Writer adds content/write and
  # metadata/write (Writer's exact list is UNCONFIRMED in Microsoft's docs; these four are
  # Contributor's list minus delete: docs/azure-container-registry.md).
  # StringEqualsIgnoreCase names exactly one repository, never a prefix.
  reader_actions = [
    "Microsoft.ContainerRegistry/registries/repositories/content/read",
    "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
  ]
  writer_actions = concat(local.reader_actions, [
    "Microsoft.ContainerRegistry/registries/repositories/content/write",
    "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
  ])
  conditions = {
    for key, id in local.identities : key => format(
      "((%s) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '%s'))",
      join(" AND ", [for a in (id.access == "push" ? local.writer_actions : local.reader_actions) : "!(ActionMatches{'${a}'})"]),
      id.repository,
    )
  }
}

resource "azurerm_container_registry" "main" {
  #checkov:skip=CKV_AZURE_139:pushes come from CI runners and developer machines anywhere; access is Entra-only (admin user off, anonymous pull off, per-repository ABAC)
  #checkov:skip=CKV_AZURE_164:Docker Content Trust needs Premium and Microsoft now recommends Notary Project signatures; signing is the pipeline's job, not the registry's
  #checkov:skip=CKV_AZURE_165:geo-replication needs Premium; an operator choice of availability, not of access
  #checkov:skip=CKV_AZURE_166:quarantine needs Premium and a scanner that releases images; not part of the broker's flow
  #checkov:skip=CKV_AZURE_167:the untagged-manifest retention policy needs Premium
  #checkov:skip=CKV_AZURE_233:zone redundancy needs Premium in a region with zones
  #checkov:skip=CKV_AZURE_237:dedicated data endpoints need Premium and matter only with firewall rules
  name                   = var.registry_name
  resource_group_name    = data.azurerm_resource_group.broker.name
  location               = data.azurerm_resource_group.broker.location
  sku                    = var.sku
  admin_enabled          = false
  anonymous_pull_enabled = false
  # "RBAC Registry + ABAC Repository Permissions" (az acr create --role-assignment-mode rbac-abac).
  role_assignment_mode = "AbacRepositoryPermissions"
}

resource "azurerm_user_assigned_identity" "broker" {
  for_each            = local.identities
  name                = "rise-${replace(each.value.project, ".", "_")}-${each.value.access}"
  resource_group_name = data.azurerm_resource_group.broker.name
  location            = data.azurerm_resource_group.broker.location
  tags = {
    "rise-project" = each.value.project
    "rise-access"  = each.value.access
  }
}

# One federated identity credential per identity (Entra allows 20; subjects match exactly,
# no wildcards). Entra refuses concurrent writes of credentials on the *same* identity with
# 409 Conflict; with one credential per identity Terraform's parallelism is safe. If you
# add a second credential to an identity (e.g. a new issuer during a migration), chain it
# with depends_on on the first.
resource "azurerm_federated_identity_credential" "broker" {
  for_each            = local.identities
  name                = "rise-broker"
  resource_group_name = data.azurerm_resource_group.broker.name
  parent_id           = azurerm_user_assigned_identity.broker[each.key].id
  issuer              = var.broker_issuer
  subject             = "project:${each.value.project}:${each.value.access}"
  audience            = ["api://AzureADTokenExchange"]
}

resource "azurerm_role_assignment" "repository" {
  for_each                         = local.identities
  scope                            = azurerm_container_registry.main.id
  role_definition_name             = each.value.access == "push" ? "Container Registry Repository Writer" : "Container Registry Repository Reader"
  principal_id                     = azurerm_user_assigned_identity.broker[each.key].principal_id
  principal_type                   = "ServicePrincipal"
  skip_service_principal_aad_check = true
  description                      = "rise broker: ${each.value.access} ${each.value.repository}"
  condition_version                = "2.0"
  condition                        = local.conditions[each.key]
}

output "broker_config" {
  description = "The [registry] section for the broker (config/production.toml)"
  value = join("\n", concat([
    "[registry]",
    "type = \"acr\"",
    "registry_url = \"${azurerm_container_registry.main.login_server}\"",
    "tenant_id = \"${data.azurerm_client_config.current.tenant_id}\"",
    "namespace = \"${var.namespace}\"",
    "",
    "[registry.client_ids]",
    ], [
    for p in var.projects :
    "\"${p}\" = { push = \"${azurerm_user_assigned_identity.broker["${p}:push"].client_id}\", pull = \"${azurerm_user_assigned_identity.broker["${p}:pull"].client_id}\" }"
  ]))
}

output "login_server" {
  description = "registry.registry_url"
  value       = azurerm_container_registry.main.login_server
}
