"""oidc-provider-mock 0.3.4 (the console's OpenID provider in the tests), made to check PKCE
as NHS CIS2 and Entra ID do: it keeps each code's `code_challenge` (S256) and refuses to
exchange the code without the `code_verifier` whose SHA-256 it is (authlib's own RFC 7636
extension). Run as `python3 pkce_provider.py --host H --port P`, the mock's own options."""

import dataclasses

import authlib.oauth2.rfc7636
import flask
from oidc_provider_mock import __main__ as mock_main
from oidc_provider_mock import _app, _storage


@dataclasses.dataclass(kw_only=True, frozen=True)
class PkceCode(_storage.AuthorizationCode):
    """An authorization code with the challenge it was issued for."""

    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def get_code_challenge(self):
        return self.code_challenge

    def get_code_challenge_method(self):
        return self.code_challenge_method


def issued_code(**fields):
    """The code the mock stores, with the challenge of the request being authorized."""
    asked = flask.request.values
    return PkceCode(
        **fields,
        code_challenge=asked.get("code_challenge"),
        code_challenge_method=asked.get("code_challenge_method"),
    )


# The mock names `AuthorizationCode` when it saves a code; its grant's extensions are called
# with the grant, where the PKCE extension adds its checks.
_app.AuthorizationCode = issued_code
_openid_code = _app.OpenIDCode.__call__


def with_pkce(self, grant):
    _openid_code(self, grant)
    authlib.oauth2.rfc7636.CodeChallenge(required=True)(grant)


_app.OpenIDCode.__call__ = with_pkce

if __name__ == "__main__":
    mock_main.run()
