# One GPU fleet in a VPC of its own: two private subnets in two zones, a security group that
# lets the control VM reach the inference servers' metrics port, and the llm-autoscaler module.
# `terraform apply`, then put the outputs into the policy (see docs and the module's README).

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

data "aws_availability_zones" "here" {
  state = "available"
}

resource "aws_vpc" "fleet" {
  cidr_block           = "10.40.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "llama-8b" }
}

resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.fleet.id
  cidr_block        = cidrsubnet(aws_vpc.fleet.cidr_block, 8, count.index)
  availability_zone = data.aws_availability_zones.here.names[count.index]
  tags              = { Name = "llama-8b-private-${count.index}" }
}

# The control VM's group, and the GPU instances' group that admits it on the metrics port.
resource "aws_security_group" "control" {
  name        = "llama-8b-control"
  description = "llm-autoscaler control VM"
  vpc_id      = aws_vpc.fleet.id
  egress {
    description = "AWS APIs (VPC endpoints or NAT) and the GPU metrics port"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
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
    description = "model downloads and AWS APIs"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
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
