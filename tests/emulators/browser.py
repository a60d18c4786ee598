"""A test "browser" for OAuth sign-ins: opens the consent page, clicks Allow (or Deny) like
a user, and follows the redirect to the app's loopback listener. Runs in a thread because
the sign-in waits for the redirect on the caller's thread."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests


@dataclass
class Browser:
    decision: str = "allow"
    """allow · deny · none (opens the page and walks away)."""
    tamper_state: bool = False
    """Replace ``state`` in the redirect (a forged answer)."""
    pages: list[tuple[int, str]] = field(default_factory=list)
    """(status, text) of the pages the browser showed, the loopback's last."""
    errors: list[BaseException] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()
        return True

    def _run(self, url: str) -> None:
        try:
            with requests.Session() as s:
                s.trust_env = False
                page = s.get(url, allow_redirects=False, timeout=10)
                if page.status_code == 200 and "<form" in page.text:
                    if self.decision == "none":
                        return
                    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text)
                    assert ticket, page.text
                    page = s.post(
                        urljoin(url, "/o/oauth2/v2/approve"),
                        data={"ticket": ticket.group(1), "decision": self.decision},
                        allow_redirects=False,
                        timeout=10,
                    )
                if page.status_code != 302:
                    self.pages.append((page.status_code, page.text))
                    return
                location = page.headers["Location"]
                if self.tamper_state:
                    location = re.sub(r"state=[^&]+", "state=forged", location)
                final = s.get(location, timeout=10)
                self.pages.append((final.status_code, final.text))
        except BaseException as err:  # reported to the test
            self.errors.append(err)

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(10)
