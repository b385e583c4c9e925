# The control VM: one small instance that runs llm-autoscaler as its hardened systemd unit,
# installed at first boot from a release artifact in S3 (scripts/release.sh builds it), with the
# policy written to /etc/llm-autoscaler/policy.toml. Logs go to journald
# (`journalctl -u llm-autoscaler`); /metrics is on 127.0.0.1:9464 unless the policy says
# otherwise. For an HA pair, instantiate it twice, in subnets of two zones.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

locals {
  tags = merge(var.tags, { "llm-autoscaler/role" = "control" })
}

# The daemon's role may read the artifact it is installed from, and nothing else in S3.
data "aws_iam_policy_document" "artifact" {
  statement {
    sid       = "ReadReleaseArtifact"
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::${var.artifact_bucket}/${var.artifact_key}"]
  }
}

resource "aws_iam_role_policy" "artifact" {
  name   = "llm-autoscaler-artifact-${var.name}"
  role   = var.controller_role_name
  policy = data.aws_iam_policy_document.artifact.json
}

resource "aws_instance" "control" {
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = var.security_group_ids
  iam_instance_profile   = var.instance_profile_name
  monitoring             = true
  ebs_optimized          = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = 20
    volume_type = "gp3"
    encrypted   = true
  }

  # The artifact's read permission before the first boot needs it.
  depends_on = [aws_iam_role_policy.artifact]

  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    bucket = var.artifact_bucket
    key    = var.artifact_key
    policy = var.policy_toml
  })

  tags = merge(local.tags, { Name = "${var.name}-llm-autoscaler" })
}
