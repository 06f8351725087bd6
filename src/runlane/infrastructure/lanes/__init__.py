from runlane.infrastructure.lanes.postgres_lane import create_postgres_lane
from runlane.infrastructure.lanes.postgres_sqs import create_postgres_sqs_lane

__all__ = ["create_postgres_lane", "create_postgres_sqs_lane"]
