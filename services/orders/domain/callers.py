"""Who is calling, and what that lets them see and do with orders.

A customer sees, lists, watches and cancels only its own orders (the orders whose
customer_id is its subject), and another customer's order is indistinguishable from one
that does not exist. Admins act on any order, may place one on a customer's behalf and
may list any customer's. Services (the worker, the monitor) see every order; which RPCs
each role may call at all is the access policy's business (services/common/auth).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.common.errors import PermissionDenied


class CallerRole(enum.StrEnum):
    ADMIN = "admin"
    SERVICE = "service"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Caller:
    subject: str
    role: CallerRole

    @property
    def actor(self) -> str:
        """How history names who caused a transition: "customer:<subject>" and the like."""
        return f"{self.role}:{self.subject}"

    @property
    def visible_to(self) -> str | None:
        """The customer whose orders alone this caller may see; None for every order."""
        return self.subject if self.role is CallerRole.CUSTOMER else None

    def owner_for(self, requested_customer_id: str) -> str:
        """Whose order a create makes: the caller's own unless an admin names another."""
        if not requested_customer_id or requested_customer_id == self.subject:
            return self.subject
        if self.role is CallerRole.ADMIN:
            return requested_customer_id
        raise PermissionDenied(
            "only an admin may place an order for another customer; leave customer_id empty "
            "to order for yourself"
        )

    def require_admin(self, what: str) -> None:
        """The access policy already keeps `what` to admins; this keeps the service layer
        safe on its own, whoever calls it."""
        if self.role is not CallerRole.ADMIN:
            raise PermissionDenied(f"only an admin may {what}")

    def customer_to_list(self, requested_customer_id: str) -> str | None:
        """The customer whose orders a listing shows; None for every customer's."""
        if self.role is not CallerRole.CUSTOMER:
            return requested_customer_id or None
        if requested_customer_id and requested_customer_id != self.subject:
            raise PermissionDenied(
                "a customer may list only its own orders; leave customer_id empty"
            )
        return self.subject
