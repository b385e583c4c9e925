# GPU fleet for llm-autoscaler: one on-demand and one spot Auto Scaling Group from one launch
# template, interruption and lifecycle events routed to an SQS queue, and the control VM's IAM
# role allowed exactly the calls the daemon makes. Desired capacity belongs to the daemon:
# Terraform sets the bounds and ignores desired_capacity afterwards.

locals {
  tags = merge(var.tags, { "llm-autoscaler/fleet" = var.name })
  # The on-demand group has a warm pool, so no mixed instances policy and no weights: AWS
  # counts its sizes in instances of the first type, each that type's weight_units. Its floor
  # rounds down (the group never holds more than the policy's base), its ceiling up (it never
  # caps what the policy may ask); the daemon converts its desired capacity the same way.
  on_demand_weight   = var.instance_types[0].weight_units
  on_demand_min_size = floor(var.on_demand_min_units / local.on_demand_weight)
  on_demand_max_size = ceil(var.max_units / local.on_demand_weight)
  # Units in service plus warm, at most: AWS keeps (this − desired) warm. Its own default
  # (MaxSize) would launch and stop max_units GPU instances at apply.
  warm_pool_max_prepared = coalesce(var.warm_pool_max_prepared_units, var.on_demand_min_units + var.warm_pool_min_size * local.on_demand_weight)
  # Group metrics in CloudWatch (1-minute, free): what the Grafana dashboard and alerts read
  # beside the daemon's own.
  group_metrics = [
    "GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity", "GroupInServiceInstances",
    "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances",
    "WarmPoolDesiredCapacity", "WarmPoolWarmedCapacity", "WarmPoolPendingCapacity",
  ]
}

# Completes the launch lifecycle hook ("ready") once the inference server answers: an instance
# enters service — or the warm pool, stopped — only when it can serve. It must run at *every*
# boot: an instance leaving the warm pool (or returning to it on scale-in) passes through the
# hook again, and user data runs only at the first boot — so the user data installs it as a
# systemd oneshot unit. A boot with no hook pending completes nothing (the call fails, ignored).
locals {
  ready_hook_script  = <<-EOT
    #!/bin/bash
    # llm-autoscaler: wait for the inference server, then tell the group this instance is ready.
    until curl -sf http://127.0.0.1:${var.metrics_port}/health >/dev/null; do sleep 5; done
    imds() {
      local token
      token=$(curl -sX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
      curl -s -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
    }
    ID=$(imds instance-id)
    REGION=$(imds placement/region)
    for attempt in 1 2 3 4 5 6; do
      ASG=$(aws autoscaling describe-auto-scaling-instances --region "$REGION" --instance-ids "$ID" \
        --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text) \
        && aws autoscaling complete-lifecycle-action --region "$REGION" --lifecycle-hook-name ready \
          --auto-scaling-group-name "$ASG" --instance-id "$ID" --lifecycle-action-result CONTINUE \
        && exit 0
      sleep $((attempt * 10))
    done
    echo "no ready hook completed (none pending on this boot, or no permission yet)"
  EOT
  ready_hook_command = <<-EOT
    # llm-autoscaler: complete the launch lifecycle hook at every boot, once the server answers.
    cat > /usr/local/bin/llm-autoscaler-ready <<'READY'
    ${local.ready_hook_script}
    READY
    chmod 0755 /usr/local/bin/llm-autoscaler-ready
    cat > /etc/systemd/system/llm-autoscaler-ready.service <<'UNIT'
    [Unit]
    Description=Tell the Auto Scaling group this instance's inference server is ready
    After=network-online.target
    Wants=network-online.target
    [Service]
    Type=oneshot
    ExecStart=/usr/local/bin/llm-autoscaler-ready
    [Install]
    WantedBy=multi-user.target
    UNIT
    systemctl daemon-reload
    systemctl enable llm-autoscaler-ready.service
    systemctl start --no-block llm-autoscaler-ready.service
  EOT
  user_data          = var.ready_hook_in_user_data ? "${var.user_data == "" ? "#!/bin/bash\n" : "${var.user_data}\n"}${local.ready_hook_command}" : var.user_data
}

# The AMI's own root device name: Amazon Linux uses /dev/xvda, Ubuntu-based Deep Learning AMIs
# /dev/sda1 — a hard-coded name attached the encrypted volume as a second disk and left the
# root at the AMI's size, unencrypted.
data "aws_ami" "gpu" {
  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

# The GPU instances' own role: they complete their launch lifecycle hook once the inference
# server answers (ready_hook_command), so a warm instance is stopped only when ready.
data "aws_iam_policy_document" "gpu_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gpu" {
  name               = "${var.name}-gpu"
  assume_role_policy = data.aws_iam_policy_document.gpu_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "gpu" {
  statement {
    sid       = "CompleteOwnLaunchHook"
    actions   = ["autoscaling:CompleteLifecycleAction"]
    resources = [aws_autoscaling_group.on_demand.arn, aws_autoscaling_group.spot.arn]
  }
  statement {
    sid       = "FindOwnGroup"
    actions   = ["autoscaling:DescribeAutoScalingInstances"]
    resources = ["*"] # Describe calls take no resource-level permissions
  }
}

resource "aws_iam_role_policy" "gpu" {
  name   = "ready-hook"
  role   = aws_iam_role.gpu.id
  policy = data.aws_iam_policy_document.gpu.json
}

resource "aws_iam_role_policy_attachment" "gpu_extra" {
  for_each   = toset(var.gpu_policy_arns)
  role       = aws_iam_role.gpu.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "gpu" {
  name = "${var.name}-gpu"
  role = aws_iam_role.gpu.name
}

resource "aws_launch_template" "gpu" {
  name_prefix   = "${var.name}-"
  image_id      = var.ami_id
  instance_type = var.instance_types[0].type
  user_data     = local.user_data == "" ? null : base64encode(local.user_data)

  vpc_security_group_ids = var.security_group_ids

  iam_instance_profile {
    arn = aws_iam_instance_profile.gpu.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = data.aws_ami.gpu.root_device_name
    ebs {
      volume_size           = 200
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.tags
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = !var.ready_hook_in_user_data || var.user_data == "" || startswith(var.user_data, "#!")
      error_message = "user_data must be a shell script (#!…) while ready_hook_in_user_data is true; for cloud-init YAML set it to false and run the ready_hook_command output from your cloud-init."
    }
  }
}

resource "aws_autoscaling_group" "on_demand" {
  name                      = "${var.name}-on-demand"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = local.on_demand_min_size
  max_size                  = local.on_demand_max_size
  desired_capacity          = local.on_demand_min_size
  health_check_type         = "EC2"
  default_instance_warmup   = 120
  wait_for_capacity_timeout = "0"
  target_group_arns         = var.target_group_arns
  enabled_metrics           = local.group_metrics
  metrics_granularity       = "1Minute"

  launch_template {
    id      = aws_launch_template.gpu.id
    version = "$Latest"
  }

  warm_pool {
    pool_state                  = "Stopped"
    min_size                    = var.warm_pool_min_size
    max_group_prepared_capacity = ceil(local.warm_pool_max_prepared / local.on_demand_weight)
    instance_reuse_policy {
      reuse_on_scale_in = true
    }
  }

  # A launching instance — into service or into the warm pool — waits until its server is
  # ready; one that never reports ready is abandoned (replaced) after ready_timeout_secs.
  initial_lifecycle_hook {
    name                 = "ready"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
    default_result       = "ABANDON"
    heartbeat_timeout    = var.ready_timeout_secs
  }

  # Scale-in waits for the daemon to drain the instance and complete the action.
  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_secs
  }

  dynamic "tag" {
    for_each = merge(local.tags, { "llm-autoscaler/market" = "on-demand" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # The daemon owns the desired capacity and sizes the warm pool (PutWarmPool).
  lifecycle {
    ignore_changes = [desired_capacity, warm_pool]
  }
}

resource "aws_autoscaling_group" "spot" {
  name                      = "${var.name}-spot"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = 0
  max_size                  = var.max_units
  desired_capacity          = 0
  capacity_rebalance        = true
  health_check_type         = "EC2"
  default_instance_warmup   = 120
  wait_for_capacity_timeout = "0"
  target_group_arns         = var.target_group_arns
  enabled_metrics           = local.group_metrics
  metrics_granularity       = "1Minute"

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.gpu.id
        version            = "$Latest"
      }
      dynamic "override" {
        for_each = var.instance_types
        content {
          instance_type     = override.value.type
          weighted_capacity = tostring(override.value.weight_units)
        }
      }
    }
  }

  initial_lifecycle_hook {
    name                 = "ready"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
    default_result       = "ABANDON"
    heartbeat_timeout    = var.ready_timeout_secs
  }

  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_secs
  }

  dynamic "tag" {
    for_each = merge(local.tags, { "llm-autoscaler/market" = "spot" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# Spot interruption warnings, rebalance recommendations, lifecycle actions and instance state
# changes → one queue the daemon consumes (deleting a message only after handling it). Several
# fleets under one daemon share one queue: the first module creates it, the others pass it in
# (events_queue) — the daemon routes each event to its fleet by instance and group.
locals {
  owns_queue   = var.events_queue == null
  events_queue = local.owns_queue ? { arn = aws_sqs_queue.events[0].arn, url = aws_sqs_queue.events[0].url } : var.events_queue
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

resource "aws_sqs_queue" "events" {
  count                      = local.owns_queue ? 1 : 0
  name                       = "${var.name}-events"
  message_retention_seconds  = 3600
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true
  # A message the daemon cannot read is left in the queue and moves here after
  # maxReceiveCount receives, where a human can read it (unreadable_events_total counts them).
  # A terminate lifecycle message is also left in the queue — received again every 60 s — until
  # its instance has drained: the count covers the drain timeout and ten minutes more, so a
  # message still being acted on never goes to the dead-letter queue.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq[0].arn
    maxReceiveCount     = ceil((var.drain_timeout_secs + 600) / 60) + 5
  })
  tags = local.tags
}

resource "aws_sqs_queue" "events_dlq" {
  count                     = local.owns_queue ? 1 : 0
  name                      = "${var.name}-events-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's longest
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

locals {
  # EC2's instance events cannot be filtered by group: the queue's owner routes them once for
  # every fleet sharing the queue. The lifecycle events name their group: each fleet its own.
  ec2_event_patterns = local.owns_queue ? {
    spot-interruption = { source = ["aws.ec2"], "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
    rebalance         = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
    state-change      = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"] }
  } : {}
  event_patterns = merge(local.ec2_event_patterns, {
    lifecycle = {
      source        = ["aws.autoscaling"]
      "detail-type" = ["EC2 Instance-terminate Lifecycle Action"]
      detail        = { AutoScalingGroupName = [aws_autoscaling_group.on_demand.name, aws_autoscaling_group.spot.name] }
    }
  })
}

resource "aws_cloudwatch_event_rule" "events" {
  for_each      = local.event_patterns
  name          = "llm-autoscaler-${var.name}-${each.key}"
  event_pattern = jsonencode(each.value)
  tags          = local.tags
}

resource "aws_cloudwatch_event_target" "events" {
  for_each = aws_cloudwatch_event_rule.events
  rule     = each.value.name
  arn      = local.events_queue.arn
}

# Every llm-autoscaler rule of this account may send to the queue (the fleets sharing it
# included; one queue policy per queue, written by its owner).
data "aws_iam_policy_document" "events_to_queue" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [local.events_queue.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:events:*:${data.aws_caller_identity.current.account_id}:rule/llm-autoscaler-*"]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  count     = local.owns_queue ? 1 : 0
  queue_url = aws_sqs_queue.events[0].id
  policy    = data.aws_iam_policy_document.events_to_queue.json
}

# The control VM: exactly the calls llm-autoscaler makes.
data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "controller" {
  statement {
    sid = "ReadFleet"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeScalingActivities",
      "ec2:DescribeInstances",
      "ec2:DescribeSpotPriceHistory",
      "cloudwatch:GetMetricData",
    ]
    resources = ["*"] # these Describe/Get calls do not support resource-level permissions
  }
  dynamic "statement" {
    for_each = var.metrics_namespace == null ? [] : [var.metrics_namespace]
    content {
      sid       = "PublishFleetMetrics"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"] # PutMetricData has no resource type; the namespace condition scopes it
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [statement.value]
      }
    }
  }
  statement {
    sid = "SteerFleet"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:PutWarmPool",
      "autoscaling:CompleteLifecycleAction",
    ]
    resources = [aws_autoscaling_group.on_demand.arn, aws_autoscaling_group.spot.arn]
  }
  statement {
    sid       = "ConsumeEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [local.events_queue.arn]
  }
  dynamic "statement" {
    for_each = var.ha_lease ? [1] : []
    content {
      sid       = "HoldLeaderLease"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [aws_dynamodb_table.lease[0].arn]
    }
  }
  statement {
    # `llm-autoscaler check --aws` reads which rules feed the events queue (read-only): the
    # names of the rules targeting it (the call names a target, not a rule: `*`) ...
    sid       = "ListEventRules"
    actions   = ["events:ListRuleNamesByTarget"]
    resources = ["*"]
  }
  statement {
    # ... and each one's pattern.
    sid       = "ReadEventRules"
    actions   = ["events:DescribeRule"]
    resources = ["arn:${data.aws_partition.current.partition}:events:*:${data.aws_caller_identity.current.account_id}:rule/*"]
  }
  statement {
    # `llm-autoscaler check --aws` asks IAM what this role may call (the write calls cannot be
    # tried without acting); read-only, and only about the role itself.
    sid       = "SimulateOwnPermissions"
    actions   = ["iam:SimulatePrincipalPolicy"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${local.controller_role}"]
  }
  dynamic "statement" {
    for_each = length(var.metric_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ReadRequestQueues"
      actions   = ["sqs:GetQueueAttributes"]
      resources = var.metric_queue_arns
    }
  }
}

# The HA pair's leader lease: one item per pair, written only by conditional PutItem
# (src/aws/lease.rs). On demand: a few requests per tick cost cents a month.
resource "aws_dynamodb_table" "lease" {
  # checkov:skip=CKV_AWS_119:encrypted at rest with the AWS-owned key; the one item holds a holder name and two counters — no data a customer-managed key would protect
  count        = var.ha_lease ? 1 : 0
  name         = "${var.name}-llm-autoscaler-lease"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease"
  attribute {
    name = "lease"
    type = "S"
  }
  server_side_encryption {
    enabled = true
  }
  point_in_time_recovery {
    enabled = true
  }
  tags = local.tags
}

# One daemon, one role: the first fleet's module creates it and its instance profile; the
# others attach their own statements to it (controller_role_name).
locals {
  owns_role       = var.controller_role_name == null
  controller_role = local.owns_role ? aws_iam_role.controller[0].name : var.controller_role_name
}

resource "aws_iam_role" "controller" {
  count              = local.owns_role ? 1 : 0
  name               = "${var.name}-llm-autoscaler"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "controller" {
  name   = "llm-autoscaler-${var.name}"
  role   = local.controller_role
  policy = data.aws_iam_policy_document.controller.json
}

resource "aws_iam_instance_profile" "controller" {
  count = local.owns_role ? 1 : 0
  name  = "${var.name}-llm-autoscaler"
  role  = aws_iam_role.controller[0].name
}
