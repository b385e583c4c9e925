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
  description = "What starts the inference server at boot (base64 is done here). A shell script (#!) unless ready_hook_in_user_data = false."
  type        = string
  default     = ""
}

variable "ready_hook_in_user_data" {
  description = "Append ready_hook_command to user_data (a shell script), so each instance completes its launch lifecycle hook once its server answers. Set false for cloud-init YAML and run the ready_hook_command output from it."
  type        = bool
  default     = true
}

variable "instance_types" {
  description = "Types the spot pool may launch, with capacity weights in units (1 = the reference replica). The first is the on-demand pool's type."
  type        = list(object({ type = string, weight_units = number }))
  default = [
    { type = "g6.xlarge", weight_units = 1 },
    { type = "g5.xlarge", weight_units = 1 },
  ]
  validation {
    condition     = length(var.instance_types) > 0
    error_message = "instance_types needs at least one type: the first is the on-demand pool's."
  }
  validation {
    condition     = alltrue([for t in var.instance_types : t.weight_units >= 1 && floor(t.weight_units) == t.weight_units])
    error_message = "Each weight_units must be a whole number of at least 1 (the policy counts capacity in whole units)."
  }
}

variable "max_units" {
  description = "Upper bound of each group, units (the policy's max_units)."
  type        = number
  default     = 40
  validation {
    condition     = var.max_units >= 1 && floor(var.max_units) == var.max_units
    error_message = "max_units must be a whole number of at least 1."
  }
}

variable "on_demand_min_units" {
  description = "On-demand floor, units: the on-demand group's MinSize (in whole instances of the first type, rounded down). The policy must keep at least this many units on on-demand (on_demand_base_units ≥ this; AWS rejects SetDesiredCapacity below a group's MinSize)."
  type        = number
  default     = 2
  validation {
    condition     = var.on_demand_min_units >= 0 && floor(var.on_demand_min_units) == var.on_demand_min_units
    error_message = "on_demand_min_units must be a whole number of at least 0."
  }
}

variable "warm_pool_min_size" {
  description = "Stopped, pre-initialised on-demand instances kept ready at least (AWS supports warm pools on on-demand groups only). The daemon may size the pool above this from the forecast; Terraform leaves its size alone after creation."
  type        = number
  default     = 2
  validation {
    condition     = var.warm_pool_min_size >= 0 && floor(var.warm_pool_min_size) == var.warm_pool_min_size
    error_message = "warm_pool_min_size must be a whole number of at least 0."
  }
}

variable "warm_pool_max_prepared_units" {
  description = "The warm pool's MaxGroupPreparedCapacity, in units (the group is given it in whole instances of the first type, rounded up): in service plus warm at most. AWS keeps (this − desired) warm, at least warm_pool_min_size instances — left to AWS's default (max_units) it would launch and stop max_units − desired GPU instances at apply. Default: on_demand_min_units + warm_pool_min_size instances' units."
  type        = number
  default     = null
  validation {
    condition     = var.warm_pool_max_prepared_units == null || try(var.warm_pool_max_prepared_units >= 0 && floor(var.warm_pool_max_prepared_units) == var.warm_pool_max_prepared_units, false)
    error_message = "warm_pool_max_prepared_units must be a whole number of at least 0, or null."
  }
}

variable "drain_timeout_secs" {
  description = "How long a terminating instance may drain before it goes anyway (the terminate lifecycle hook's heartbeat; AWS allows 30–7200 s). Keep the policy's drain_timeout_secs below it."
  type        = number
  default     = 300
  validation {
    condition     = var.drain_timeout_secs >= 30 && var.drain_timeout_secs <= 7200
    error_message = "drain_timeout_secs must be 30–7200 (the lifecycle hook heartbeat's range)."
  }
}

variable "ready_timeout_secs" {
  description = "How long a launching instance may take to report its inference server ready (the launch lifecycle hook's heartbeat, 30–7200 s) before it is abandoned. The instance completes the hook itself once its server answers (see the ready_hook_command output); a warm instance is stopped only after that."
  type        = number
  default     = 900
  validation {
    condition     = var.ready_timeout_secs >= 30 && var.ready_timeout_secs <= 7200
    error_message = "ready_timeout_secs must be 30–7200 (the lifecycle hook heartbeat's range)."
  }
}

variable "gpu_policy_arns" {
  description = "Further IAM policies for the GPU instances' role (e.g. reading model weights from S3)."
  type        = list(string)
  default     = []
}

variable "target_group_arns" {
  description = "Load balancer target groups both groups register their instances in (e.g. the ALB whose RequestCountPerTarget the policy reads)."
  type        = list(string)
  default     = []
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

variable "metrics_namespace" {
  description = "The CloudWatch namespace the daemon publishes each fleet's signals to ([global.cloudwatch_export] namespace); the controller role may put metrics in this namespace only. null: no publishing, no grant."
  type        = string
  default     = null
}

variable "ha_lease" {
  description = "Create the DynamoDB table an HA pair of daemons shares its leader lease in ([global.ha] table = the ha_lease_table output) and grant the controller role its two calls."
  type        = bool
  default     = false
}

variable "events_queue" {
  description = "An events queue to share (another fleet's module's events_queue output): several fleets under one daemon read one queue. Default: this module creates one, with its dead-letter queue and the EC2 event rules."
  type        = object({ arn = string, url = string })
  default     = null
}

variable "controller_role_name" {
  description = "The daemon's existing role (another fleet's module's controller_role_name output) to grant this fleet's calls to. Default: this module creates the role and its instance profile."
  type        = string
  default     = null
}
