"""MonitoringStack: one dashboard for the gateway, the load balancers and Aurora, and alarms
to an SNS topic (docs/deploy.md says what each means and what to do)."""

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from .compute import ComputeStack
from .database import DatabaseStack
from .settings import METRICS_NAMESPACE, Settings

FIVE_MIN = cdk.Duration.minutes(5)


def app_metric(name: str, stat: str = "Sum", **dims) -> cw.Metric:
    return cw.Metric(namespace=METRICS_NAMESPACE, metric_name=name, statistic=stat, period=FIVE_MIN, dimensions_map=dims or None)


def search(metric: str, dims: str, stat: str = "Sum", label: str = "") -> cw.MathExpression:
    """Every series of an app metric with these dimensions (for graphs; alarms cannot search)."""
    return cw.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},{dims}}} MetricName=\"{metric}\"', '{stat}', 300)",
        label=label,
        period=FIVE_MIN,
    )


class MonitoringStack(cdk.Stack):
    def __init__(
        self, scope: Construct, id: str, *, compute: ComputeStack, database: DatabaseStack, settings: Settings, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.topic = sns.Topic(self, "Alarms", display_name="ClaudeCodeProxy alarms", enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(settings.alarm_email))
        alb = compute.public_alb.metrics
        targets = compute.gateway_targets.metrics
        cluster = database.cluster

        # The gateway says when it could not push its interval metrics; CloudWatch then
        # would not hear it from the metrics themselves, so the log says it.
        publish_failures = logs.MetricFilter(
            self,
            "MetricsPublishFailuresFilter",
            log_group=compute.log_groups["Gateway"],
            filter_pattern=logs.FilterPattern.literal('"interval metrics dropped"'),
            metric_namespace=METRICS_NAMESPACE,
            metric_name="MetricsPublishFailures",
            metric_value="1",
            default_value=0,
        ).metric(statistic="Sum", period=FIVE_MIN)

        five_xx = cw.MathExpression(
            expression="100 * (t + e) / MAX([r, 1])",
            using_metrics={
                "t": alb.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MIN),
                "e": alb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MIN),
                "r": alb.request_count(period=FIVE_MIN),
            },
            label="5xx % of requests",
            period=FIVE_MIN,
        )

        def alarm(name: str, metric: cw.IMetric, threshold: float, description: str, periods: int = 1,
                  op=cw.ComparisonOperator.GREATER_THAN_THRESHOLD) -> cw.Alarm:
            a = cw.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=op,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(actions.SnsAction(self.topic))
            return a

        self.alarms = [
            alarm("FiveXxRate", five_xx, 5, "More than 5 % of gateway answers are 5xx (gateway or ALB)", 2),
            alarm("FailoverSpike", app_metric("Failovers"), 100, "Over 100 failovers to Bedrock in 5 minutes: Anthropic is rate-limiting or failing"),
            alarm("CircuitOpens", app_metric("CircuitOpens"), 10, "Over 10 keys' circuits opened in 5 minutes"),
            alarm("PlanLatencyP99", app_metric("Latency", "p99", Route="plan"), 30_000, "p99 of Plan requests over 30 s for 15 minutes", 3),
            alarm("UnhealthyTargets", targets.unhealthy_host_count(period=FIVE_MIN, statistic="Maximum"), 0, "A gateway task fails /readyz", 2),
            alarm("TargetConnectionErrors", alb.target_connection_error_count(period=FIVE_MIN), 10, "The ALB cannot reach gateway tasks"),
            alarm("DatabaseCpu", cluster.metric_cpu_utilization(period=FIVE_MIN), 80, "Aurora CPU over 80 % for 15 minutes", 3),
            alarm("DatabaseConnections", cluster.metric_database_connections(period=FIVE_MIN, statistic="Maximum"), 400,
                  "Aurora connections near the limit: too many tasks × CCP_DB_MAX_CONNECTIONS"),
            alarm("MetricsPublishFailures", publish_failures, 0, "The gateway could not push interval metrics to CloudWatch"),
        ]

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name="ClaudeCodeProxy")
        dashboard.add_widgets(
            cw.GraphWidget(title="Requests by path", left=[search("Requests", "Route,Upstream,Outcome", label="")], width=12),
            cw.GraphWidget(title="Failovers and circuit opens", left=[app_metric("Failovers"), app_metric("CircuitOpens")], width=12),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Latency by route (p50, p99)",
                left=[search("Latency", "Route", "p50", "p50"), search("Latency", "Route", "p99", "p99")],
                width=12,
            ),
            cw.GraphWidget(
                title="Bedrock tokens and cost",
                left=[search("BedrockTokens", "Kind")],
                right=[app_metric("BedrockCostUSD")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="5xx % (gateway + ALB)", left=[five_xx], width=8),
            cw.GraphWidget(
                title="ALB target errors and unhealthy targets",
                left=[alb.target_connection_error_count(period=FIVE_MIN), targets.unhealthy_host_count(period=FIVE_MIN)],
                width=8,
            ),
            cw.GraphWidget(
                title="Aurora capacity and connections",
                left=[cluster.metric_serverless_database_capacity(period=FIVE_MIN)],
                right=[cluster.metric_database_connections(period=FIVE_MIN)],
                width=8,
            ),
        )
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
