"""Sluice's HTTP send API for Python applications and workflows.

    from sluice_client import Client
    client = Client("http://127.0.0.1:2580", api_key)
    result = client.send(to="ann@example.net", subject="Hi", text="Hello")
"""

from .client import USER_AGENT, AsyncClient, Client, __version__
from .errors import (
    AuthenticationError,
    IdempotencyError,
    InvalidRequestError,
    InvalidResponseError,
    MissingParameterError,
    NetworkError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SluiceError,
)
from .policy import DEFAULT_RETRY_ATTEMPTS, MAX_DELAY, is_retryable_status, retry_delay
from .request import SendResult
from .workflow import ERROR_CODE, execute_email_node, execute_email_node_async

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "DEFAULT_RETRY_ATTEMPTS",
    "ERROR_CODE",
    "IdempotencyError",
    "InvalidRequestError",
    "InvalidResponseError",
    "MAX_DELAY",
    "MissingParameterError",
    "NetworkError",
    "PermissionDeniedError",
    "RateLimitError",
    "SendResult",
    "ServerError",
    "SluiceError",
    "USER_AGENT",
    "__version__",
    "execute_email_node",
    "execute_email_node_async",
    "is_retryable_status",
    "retry_delay",
]
