variable "name" {
  description = "Fleet name; prefixes every resource. Must match the fleet's name in the llm-autoscaler policy."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (several AZs) for the GPU instances."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the GPU instances (must let the control VM reach the metrics port)."
  type        = list(string)
}

variable "ami_id" {
  description = "GPU AMI with the inference server (vLLM or TGI) baked in."
  type        = string
}

variable "user_data" {
  description = "Cloud-init that starts the inference server (base64 is done here)."
  type        = string
  default     = ""
}

variable "instance_types" {
  description = "Types the spot pool may launch, with capacity weights in units (1 = the reference replica). The first is the on-demand pool's type."
  type        = list(object({ type = string, weight_units = number }))
  default = [
    { type = "g6.xlarge", weight_units = 1 },
    { type = "g5.xlarge", weight_units = 1 },
  ]
}

variable "max_units" {
  description = "Upper bound of each group, units (the policy's max_units)."
  type        = number
  default     = 40
}

variable "on_demand_min_units" {
  description = "On-demand floor, units (the policy's on_demand_base_units)."
  type        = number
  default     = 2
}

variable "warm_pool_min_size" {
  description = "Stopped, pre-initialised on-demand instances kept ready (AWS supports warm pools on on-demand groups only)."
  type        = number
  default     = 2
}

variable "drain_timeout_secs" {
  description = "How long a terminating instance may drain before it goes anyway (lifecycle hook heartbeat)."
  type        = number
  default     = 300
}

variable "metrics_port" {
  description = "Port of the inference server's Prometheus endpoint."
  type        = number
  default     = 8000
}

variable "metric_queue_arns" {
  description = "SQS request queues whose depth the policy reads (metrics with source type \"sqs\")."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "ha_lease" {
  description = "Create the DynamoDB table an HA pair of daemons shares its leader lease in ([global.ha] table = the ha_lease_table output) and grant the controller role its two calls."
  type        = bool
  default     = false
}
