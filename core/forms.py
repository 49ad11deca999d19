from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from core.signins import SignInLocked, sign_in_authenticate


class ThrottledSignIn:
    """An authentication form whose password is checked under the sign-in throttle (core.signins)."""

    where = "login"
    is_locked_out = False

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = sign_in_authenticate(
                    request=self.request, username=username, password=password, where=self.where
                )
            except SignInLocked as locked:
                self.is_locked_out = True
                raise forms.ValidationError(str(locked), code="locked_out") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class SignInForm(ThrottledSignIn, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password didn't match. Please try again.",
    }


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    where = "admin"
