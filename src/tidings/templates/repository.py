"""SQL for templates: listing, lookup by name and language, the review sweep."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.templates.models import Template


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def list(
        self,
        account_id: str,
        environment: Environment,
        *,
        status: str | None = "APPROVED",
        name: str | None = None,
        language: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> builtins.list[Template]:
        """Up to ``limit`` templates, newest first, after the id ``after``;
        ``status=None`` means every status. Ask for ``limit + 1`` to know whether
        another page follows."""
        query = select(Template).where(
            Template.account_id == account_id, Template.environment == environment.value
        )
        if status is not None:
            query = query.where(Template.status == status)
        if name is not None:
            query = query.where(Template.name == name)
        if language is not None:
            query = query.where(Template.language == language)
        if after is not None:
            query = query.where(Template.id < after)
        query = query.order_by(Template.id.desc()).limit(limit)
        return builtins.list(await self._session.scalars(query))

    async def get(
        self, account_id: str, environment: Environment, template_id: str
    ) -> Template | None:
        return await self._session.scalar(
            select(Template).where(
                Template.id == template_id,
                Template.account_id == account_id,
                Template.environment == environment.value,
            )
        )

    async def get_by_name(
        self, account_id: str, environment: Environment, name: str, language: str
    ) -> Template | None:
        return await self._session.scalar(
            select(Template).where(
                Template.account_id == account_id,
                Template.environment == environment.value,
                Template.name == name,
                Template.language == language,
            )
        )

    async def languages_of(
        self, account_id: str, environment: Environment, name: str
    ) -> builtins.list[str]:
        """The languages a template name exists in (to help after a wrong language)."""
        rows = await self._session.scalars(
            select(Template.language)
            .where(
                Template.account_id == account_id,
                Template.environment == environment.value,
                Template.name == name,
            )
            .order_by(Template.language)
        )
        return builtins.list(rows)

    def add(self, template: Template) -> None:
        self._session.add(template)

    async def due_for_review(self, now: datetime, limit: int) -> builtins.list[Template]:
        return builtins.list(
            await self._session.scalars(
                select(Template)
                .where(
                    Template.review_due_at.is_not(None),
                    Template.review_due_at <= now,
                    Template.status == "PENDING",
                )
                .order_by(Template.review_due_at)
                .limit(limit)
            )
        )

    async def decide(
        self, template: Template, status: str, reason: str | None, at: datetime
    ) -> bool:
        """Move a PENDING template to its verdict; False if another process did first."""
        result = await self._session.execute(
            update(Template)
            .where(Template.id == template.id, Template.status == "PENDING")
            .values(status=status, rejected_reason=reason, review_due_at=None, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        # Already written: keep the unit of work from writing the row a second time.
        self._session.expunge(template)
        template.status, template.rejected_reason = status, reason
        template.review_due_at, template.updated_at = None, at
        return True
