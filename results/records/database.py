"""The records database: the run store's database, opened for the office's read-then-write transactions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from results.store.connection import open_engine
from results.store.schema import upgrade_to_head


class RecordsDB:
    def __init__(self, engine: AsyncEngine, source: str) -> None:
        self.engine = engine
        self.source = source
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, path_or_url: str | Path) -> RecordsDB:
        """Create or upgrade the schema, then hand out transactions that take the write lock first."""
        engine = open_engine(path_or_url, write_lock_first=True)
        try:
            await upgrade_to_head(engine, str(path_or_url))
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, str(path_or_url))

    def transaction(self) -> _Transaction:
        """`async with db.transaction() as s:` commits on success, rolls back everything on any error."""
        return _Transaction(self.sessions)

    async def close(self) -> None:
        await self.engine.dispose()


class _Transaction:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._session = sessions()
        self._ctx = self._session.begin()

    async def __aenter__(self) -> AsyncSession:
        await self._ctx.__aenter__()
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._ctx.__aexit__(*exc)  # type: ignore[arg-type]
        finally:
            await self._session.close()
