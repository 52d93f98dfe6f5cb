from tests.provisioning.webhook_server import webhook  # noqa: F401 - a fixture for this package's tests
