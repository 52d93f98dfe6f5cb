"""The page frame: favicon, skip link, collapsing navigation, labelled inputs, no inline code."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.cases.ladder_builders import make_case

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# HTML e-mail bodies: mail clients drop <style> blocks, so e-mail is styled inline. They are sent,
# never served as desk pages (the admin's preview shows them in a sandboxed frame).
EMAIL_TEMPLATES = TEMPLATES / "notices"
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|\shx-on", re.IGNORECASE)
COMMENTS = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.DOTALL)


class Inputs(HTMLParser):
    """The form controls of a page and the ids its labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit", "button"):
            self.controls.append(a)


def unlabelled(html: str) -> list[dict]:
    parser = Inputs()
    parser.feed(html)
    return [c for c in parser.controls if c.get("id") not in parser.labelled and not c.get("aria-label")]


def test_the_favicon_is_served_at_the_root_and_linked_from_every_page(noc_user):
    client = Client()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"
    page = client.get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg" type="image/svg+xml"' in page
    assert 'rel="icon" href="/static/favicon-32.png"' in page


def test_the_admin_has_the_favicon_and_its_stylesheet(admin_user_role):
    client = Client()
    client.force_login(admin_user_role)
    page = client.get("/admin/").content.decode()
    assert "/static/favicon.svg" in page and "/static/css/admin.css" in page
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in page


def test_desk_pages_have_a_skip_link_and_a_collapsing_navigation(noc_user):
    client = Client()
    client.force_login(noc_user)
    page = client.get("/").content.decode()
    assert '<a class="visually-hidden-focusable skip-link" href="#main">Skip to main content</a>' in page
    assert '<main class="container-fluid" id="main" tabindex="-1">' in page
    assert 'class="navbar-toggler"' in page and 'data-bs-target="#main-nav"' in page
    assert 'class="collapse navbar-collapse" id="main-nav"' in page
    # Bootstrap's bundle (collapse) from the app itself; htmx told not to inject its <style>.
    assert "/static/vendor/bootstrap/js/bootstrap.bundle.min.js" in page
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in page
    # Signing out is a button in a POST form, not a link.
    assert re.search(
        r'<form method="post" action="/accounts/logout/"[^>]*>.*?<button[^>]*>Sign out</button>', page, re.S
    )


def test_the_login_form_is_crispy_and_every_input_has_a_label(db):
    page = Client().get("/accounts/login/").content.decode()
    assert 'id="div_id_username"' in page  # crispy's bootstrap5 field wrapper
    assert 'autocomplete="current-password"' in page
    assert unlabelled(page) == []


def test_a_failed_sign_in_says_so(db):
    page = Client().post("/accounts/login/", {"username": "x", "password": "y"}).content.decode()
    assert "Please enter a correct username and password" in page


@pytest.mark.parametrize("url", ["/", "/messages/", "/unassigned/", "/complaints/new/", "/upload/", "case"])
def test_desk_pages_label_every_input(admin_user_role, url):
    client = Client()
    client.force_login(admin_user_role)
    if url == "case":
        url = make_case(reports=2, unconfirmed=1).get_absolute_url()
    response = client.get(url)
    assert response.status_code == 200
    assert unlabelled(response.content.decode()) == []


def test_no_template_has_inline_script_style_or_handlers():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        if path.parent == EMAIL_TEMPLATES:
            continue
        # Comments blanked, lines kept, so the numbers stay right.
        text = COMMENTS.sub(lambda m: "\n" * m.group().count("\n"), path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            if INLINE.search(line):
                found.append(f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()}")
    assert found == []
