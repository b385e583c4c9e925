# Two GPU fleets scaled by one daemon (one control VM, or an HA pair): the first fleet's module
# creates the events queue, the daemon's role and the HA lease table; the second shares the
# queue and grants its calls to the same role. One policy then lists both fleets.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "ami_id" {
  description = "GPU AMI with the inference server baked in."
  type        = string
}

variable "subnet_ids" {
  description = "Existing private subnets (two zones or more) for the GPU instances."
  type        = list(string)
}

variable "gpu_security_group_id" {
  description = "Existing security group of the GPU instances; it must admit the control VM on port 8000."
  type        = string
}

module "llama_8b" {
  source             = "../.."
  name               = "llama-8b"
  subnet_ids         = var.subnet_ids
  security_group_ids = [var.gpu_security_group_id]
  ami_id             = var.ami_id
  max_units          = 12
  ha_lease           = true
}

module "qwen_32b" {
  source               = "../.."
  name                 = "qwen-32b"
  subnet_ids           = var.subnet_ids
  security_group_ids   = [var.gpu_security_group_id]
  ami_id               = var.ami_id
  instance_types       = [{ type = "g6e.4xlarge", weight_units = 1 }]
  max_units            = 6
  on_demand_min_units  = 1
  warm_pool_min_size   = 1
  events_queue         = module.llama_8b.events_queue
  controller_role_name = module.llama_8b.controller_role_name
}

output "policy_global_toml" {
  description = "The policy's [global.aws] and [global.ha] for the one daemon."
  value       = <<-EOT
    [global.aws]
    region = "${var.region}"
    events_queue_url = "${module.llama_8b.events_queue_url}"

    [global.ha]
    table = "${module.llama_8b.ha_lease_table}"
  EOT
}

output "llama_8b_pools_toml" {
  description = "The llama-8b fleet's pools."
  value       = module.llama_8b.policy_pools_toml
}

output "qwen_32b_pools_toml" {
  description = "The qwen-32b fleet's pools."
  value       = module.qwen_32b.policy_pools_toml
}

output "controller_instance_profile" {
  description = "The one daemon's instance profile."
  value       = module.llama_8b.controller_instance_profile
}
