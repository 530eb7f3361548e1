"""Links to the AWS console, so a user can open the graph or resource a finding names."""

from __future__ import annotations

from urllib.parse import quote

from checks.snapshot import LoadBalancer


def monitoring_url(lb: LoadBalancer, region: str) -> str:
    """The load balancer's Monitoring tab, where the console graphs its CloudWatch metrics."""
    base = f"https://{region}.console.aws.amazon.com/ec2/home?region={region}"
    if lb.type == "classic" or not lb.arn:
        return f"{base}#LoadBalancers:search={quote(lb.name)};tab=monitoring"
    return f"{base}#LoadBalancer:loadBalancerArn={quote(lb.arn, safe='')};tab=monitoring"


def metric_url(lb: LoadBalancer, region: str, metric: str, stat: str) -> str:
    """A CloudWatch graph of one metric of ``lb`` over the last 3 hours."""
    if lb.type == "classic":
        namespace, dimension, value = "AWS/ELB", "LoadBalancerName", lb.name
    else:
        namespace = "AWS/ApplicationELB" if lb.type == "application" else "AWS/NetworkELB"
        dimension, value = "LoadBalancer", lb.arn.split(":loadbalancer/", 1)[-1]
    # The console's graph parameter is a "~"-separated source; "*2f" stands for "/".
    source = (
        f"(metrics~(~(~'{namespace.replace('/', '*2f')}~'{metric}~'{dimension}"
        f"~'{value.replace('/', '*2f')}))~period~60~stat~'{stat}~region~'{region})"
    )
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#metricsV2:graph=~{source}"
    )
