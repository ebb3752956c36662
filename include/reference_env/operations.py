"""Deploy and restart as asynchronous operations: begun at once, the process replaced in a task, polled by id."""

from __future__ import annotations

import asyncio
import logging
import uuid

from baseline_guard.environment_contract import InstanceState, Operation, OperationState

from reference_env.errors import Conflict, NotFound
from reference_env.processes import SpawnError
from reference_env.runtime import InstanceRuntime, utcnow
from reference_env.store import Store
from reference_env.supervisor import Supervisor

log = logging.getLogger(__name__)


class Operations:
    """Every operation since the server started (in memory), one at a time per instance."""

    def __init__(self, store: Store, supervisor: Supervisor) -> None:
        self.store = store
        self.supervisor = supervisor
        self._operations: dict[str, Operation] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, op_id: str) -> Operation:
        found = self._operations.get(op_id)
        if found is None:
            raise NotFound(f"operation {op_id!r} not found")
        return found

    def of_kind(self, kind: str | None = None) -> list[Operation]:
        """The operations of ``kind`` (or all), oldest first."""
        return sorted(
            (op for op in self._operations.values() if kind is None or op.kind == kind),
            key=lambda op: op.started_at,
        )

    def begin(self, inst: InstanceRuntime, kind: str, version: str, *, fail_start: bool) -> Operation:
        """Start replacing the instance's process with one at ``version``; 409 while another operation runs."""
        if inst.operation_id is not None:
            raise Conflict(
                f"instance {inst.label} is busy with operation {inst.operation_id}; poll it and retry"
            )
        op = Operation(
            id=uuid.uuid4().hex,
            kind=kind,
            environment=inst.environment,
            service=inst.service,
            instance=inst.index,
            target_version=version,
            state=OperationState.PENDING,
            started_at=utcnow(),
        )
        self._operations[op.id] = op
        inst.operation_id = op.id
        task = asyncio.get_running_loop().create_task(self._replace_process(op, inst, version, fail_start))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("operation %s: %s %s to %s", op.id, kind, inst.label, version)
        return op

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _replace_process(
        self, op: Operation, inst: InstanceRuntime, version: str, fail_start: bool
    ) -> None:
        op.state = OperationState.RUNNING
        try:
            await self.supervisor.stop(inst)
            if version != inst.version:
                inst.previous_version, inst.version = inst.version, version
            self.store.save()
            op.message = await self.supervisor.start(inst, fail_start=fail_start)
            op.state = OperationState.SUCCEEDED
        except SpawnError as exc:
            op.state, op.message = OperationState.FAILED, str(exc)
        except Exception as exc:  # the operation must end either way
            log.exception("operation %s crashed", op.id)
            inst.state = InstanceState.FAILED
            op.state, op.message = (
                OperationState.FAILED,
                f"{op.kind} of {inst.label} failed: {type(exc).__name__}: {exc}",
            )
        finally:
            op.finished_at = utcnow()
            inst.operation_id = None
            self.store.save()
            log.info("operation %s %s: %s", op.id, op.state.value, op.message)
