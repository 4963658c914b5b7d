"""The PagerDuty REST API v2: what comes after the page.

``PagerDutyAPI`` (sync) and ``AsyncPagerDutyAPI`` find the incident an
event opened, acknowledge or resolve incidents, list what is open, read
who is on call, and speak any other REST endpoint through the official
client's method names (``rget``, ``rput``, ``iter_all``, ``find``...).
See ``docs/rest.md``.
"""

from __future__ import annotations

from ._async import AsyncPagerDutyAPI
from ._response import RestResponse
from ._sync import PagerDutyAPI

__all__ = ["AsyncPagerDutyAPI", "PagerDutyAPI", "RestResponse"]
