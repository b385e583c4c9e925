# One GPU fleet and its control VM in a VPC of their own: two private subnets in two zones,
# security groups that let the control VM reach the inference servers' metrics port, the
# llm-autoscaler module, and the control VM running the daemon with a policy rendered from the
# module's outputs (policy.toml.tftpl). docs/deploy.md walks through it.

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

variable "control_ami_id" {
  description = "The control VM's AMI: Linux with systemd and the AWS CLI (e.g. Amazon Linux 2023)."
  type        = string
}

variable "artifact_bucket" {
  description = "S3 bucket holding the release artifact (scripts/release.sh)."
  type        = string
}

variable "artifact_key" {
  description = "Key of the release artifact."
  type        = string
  default     = "llm-autoscaler-0.1.0-x86_64-linux.tar.gz"
}

variable "control_vm" {
  description = "Create the control VM (false: apply the fleet only, e.g. to run the daemon elsewhere)."
  type        = bool
  default     = true
}

variable "zones" {
  description = "Two availability zones (named, so the subnets never move when AWS adds a zone)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

resource "aws_vpc" "fleet" {
  # checkov:skip=CKV2_AWS_11:an example's own VPC; flow logs are the VPC owner's (examples/two-fleets brings its own)
  cidr_block           = "10.40.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "llama-8b" }
}

# No traffic through the VPC's default group: every instance here has a group of its own.
resource "aws_default_security_group" "fleet" {
  vpc_id = aws_vpc.fleet.id
}

resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.fleet.id
  cidr_block        = cidrsubnet(aws_vpc.fleet.cidr_block, 8, count.index)
  availability_zone = var.zones[count.index]
  tags              = { Name = "llama-8b-private-${count.index}" }
}

# The control VM's group, and the GPU instances' group that admits it on the metrics port.
resource "aws_security_group" "control" {
  name        = "llama-8b-control"
  description = "llm-autoscaler control VM"
  vpc_id      = aws_vpc.fleet.id
  egress {
    description = "AWS APIs over HTTPS (VPC endpoints or NAT)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "the inference servers metrics port, inside the VPC"
    from_port   = 8000
    to_port     = 8000
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.fleet.cidr_block]
  }
}

resource "aws_security_group" "gpu" {
  name        = "llama-8b-gpu"
  description = "GPU inference servers"
  vpc_id      = aws_vpc.fleet.id
  ingress {
    description     = "metrics and health from the llm-autoscaler control VM"
    from_port       = 8000
    to_port         = 8000
    protocol        = "tcp"
    security_groups = [aws_security_group.control.id]
  }
  egress {
    description = "model downloads and AWS APIs over HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "fleet" {
  source             = "../.."
  name               = "llama-8b"
  subnet_ids         = aws_subnet.private[*].id
  security_group_ids = [aws_security_group.gpu.id]
  ami_id             = var.ami_id
  max_units          = 12
  instance_types = [
    { type = "g6e.xlarge", weight_units = 1 },
    { type = "g6e.2xlarge", weight_units = 1 },
  ]
}

# The daemon, on a VM of its own, with the policy rendered from the module's outputs: the
# groups' names, weights, bounds and warm pool come from one place.
locals {
  policy_toml = templatefile("${path.module}/policy.toml.tftpl", {
    region           = var.region
    events_queue_url = module.fleet.events_queue_url
    fleet_bounds     = module.fleet.policy_fleet_bounds_toml
    pools            = module.fleet.policy_pools_toml
  })
}

module "control" {
  count                 = var.control_vm ? 1 : 0
  source                = "../../modules/control-vm"
  name                  = "llama-8b"
  ami_id                = var.control_ami_id
  subnet_id             = aws_subnet.private[0].id
  security_group_ids    = [aws_security_group.control.id]
  instance_profile_name = module.fleet.controller_instance_profile
  controller_role_name  = module.fleet.controller_role_name
  artifact_bucket       = var.artifact_bucket
  artifact_key          = var.artifact_key
  policy_toml           = local.policy_toml
}

output "policy_toml" {
  description = "The policy the control VM runs (rendered from the module's outputs)."
  value       = local.policy_toml
}

output "control_vm" {
  description = "The control VM's instance id."
  value       = var.control_vm ? module.control[0].instance_id : null
}

output "policy_pools_toml" {
  description = "Paste into the fleet's policy."
  value       = module.fleet.policy_pools_toml
}

output "policy_fleet_bounds_toml" {
  description = "Paste into the fleet's policy."
  value       = module.fleet.policy_fleet_bounds_toml
}

output "events_queue_url" {
  description = "[global.aws] events_queue_url."
  value       = module.fleet.events_queue_url
}

output "controller_instance_profile" {
  description = "The control VM's instance profile."
  value       = module.fleet.controller_instance_profile
}
