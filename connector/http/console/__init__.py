"""The admin console, served at /console by the connector itself: pages, sign-in, sign-out.

    GET    /console            the single-page app (plain ES modules and CSS from connector/resources/console)
    GET    /console/static/*   its scripts, styles and icons; nothing is fetched from elsewhere
    GET    /console/session    who is signed in, with the CSRF token the pages send back (401 when nobody is)
    POST   /console/session    sign in (JSON or a plain form post): sets the session cookie
    DELETE /console/session    sign out (needs X-CSRF-Token): the session is deleted, the cookie cleared

The pages call the management API at /api/management with the session cookie (see `management.auth`), so they
do exactly what an operator's scripts can do, and show the API's own error messages.
"""

from connector.http.console.routes import install

__all__ = ["install"]
