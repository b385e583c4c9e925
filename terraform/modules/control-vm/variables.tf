variable "name" {
  description = "Name of the control plane (tags; the artifact policy's name)."
  type        = string
}

variable "ami_id" {
  description = "A Linux AMI with systemd and the AWS CLI (e.g. Amazon Linux 2023)."
  type        = string
}

variable "instance_type" {
  description = "The daemon needs little: ~35 MB of memory and a few ms of CPU per fleet per tick."
  type        = string
  default     = "t3.small"
}

variable "subnet_id" {
  description = "A private subnet with a route to the AWS APIs (NAT or VPC endpoints for autoscaling, ec2, sqs, monitoring, s3, dynamodb) and to the GPU instances' metrics port."
  type        = string
}

variable "security_group_ids" {
  description = "The control VM's security groups (the GPU instances' group must admit these on the metrics port)."
  type        = list(string)
}

variable "instance_profile_name" {
  description = "The fleet module's controller_instance_profile output."
  type        = string
}

variable "controller_role_name" {
  description = "The fleet module's controller_role_name output (granted s3:GetObject on the artifact)."
  type        = string
}

variable "artifact_bucket" {
  description = "S3 bucket holding the release artifact (scripts/release.sh)."
  type        = string
}

variable "artifact_key" {
  description = "Key of the release artifact, e.g. llm-autoscaler-0.1.0-x86_64-linux.tar.gz."
  type        = string
}

variable "policy_toml" {
  description = "The whole policy file (written to /etc/llm-autoscaler/policy.toml; `check` runs before the unit starts)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
