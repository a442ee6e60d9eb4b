"""One function per e-mail (STYLE 18), each rendered from a subject / text / HTML template set."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from .models import User


def send_templated(template: str, to: str, context: dict) -> None:
    """The e-mail ``template`` (emails/<template>_subject.txt, .txt and .html) to ``to``, as text and HTML."""
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject, render_to_string(f"emails/{template}.txt", context), settings.DEFAULT_FROM_EMAIL, [to]
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    message.send()


def send_invitation(user: User, link: str) -> None:
    """U2 / A2: a new user's sign-in instructions."""
    send_templated(
        "invitation",
        user.email,
        {"user": user, "merchant": user.merchant, "link": link, "hours": settings.PASSWORD_RESET_TIMEOUT // 3600},
    )


def send_password_reset(user: User, link: str) -> None:
    """U5: a new one-time link to set a password."""
    send_templated(
        "password_reset",
        user.email,
        {"user": user, "merchant": user.merchant, "link": link, "hours": settings.PASSWORD_RESET_TIMEOUT // 3600},
    )
