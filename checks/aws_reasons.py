"""What AWS's target-health reason codes mean, and what to look at for each."""

from __future__ import annotations

REASONS: dict[str, str] = {
    "Elb.RegistrationInProgress": "the target is being registered",
    "Elb.InitialHealthChecking": "initial health checks are still running",
    "Elb.InternalError": "the load balancer had an internal error while checking",
    "Target.ResponseCodeMismatch": (
        "the health check got an HTTP status the matcher does not accept: check the "
        "health-check path and success codes"
    ),
    "Target.Timeout": (
        "the health check timed out: usually a security group or network ACL drops the "
        "traffic, or the app does not listen on that port"
    ),
    "Target.FailedHealthChecks": (
        "the connection failed or the response was not valid: the app is down, listens on "
        "another port, or resets the connection"
    ),
    "Target.NotRegistered": "the target is not registered with the target group",
    "Target.NotInUse": (
        "the target group is not used by a listener, or the target sits in a zone the load "
        "balancer is not enabled in"
    ),
    "Target.DeregistrationInProgress": "the target is draining",
    "Target.InvalidState": "the instance is stopped or terminated",
    "Target.IpUnusable": "the IP address is in use by the load balancer itself",
    "Target.HealthCheckDisabled": "health checks are disabled",
}


def explain(reason: str) -> str:
    return REASONS.get(reason, "")
