from tests.notices.smtp import scripted_smtp  # noqa: F401 - the scripted SMTP server fixture
