"""Where the collectors look: a kube context and an AWS account/region."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Connection:
    """``None`` fields mean "as kubectl and the AWS CLI would": the current kubeconfig
    context, the default credential chain and region."""

    kubeconfig: str | None = None
    context: str | None = None
    aws_endpoint_url: str | None = None
    region: str | None = None
    aws_profile: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    # An IAM role to assume before any AWS call, e.g. one per cluster's account.
    role_arn: str | None = None
    cluster: str = "default"
    # Namespace where short-lived node-reading pods are started.
    probe_namespace: str = "default"
    probe_image: str = "public.ecr.aws/docker/library/busybox:1.36"
    read_nodes: bool = True
    # The whole report's deadline: what has not answered by then is reported as such.
    deadline_s: float = 45.0
