"""The test components SmartFrog's own tests deploy (``org/smartfrog/services/assertions``).

=================  ===============================================================================
``TestBlock``      run ``action``, record how it ended (``finished``, ``succeeded``, ``failed``,
                   ``status``, ``forcedTimeout``); ``timeout`` ms terminates a slow action
``TestCompound``   run ``action`` then ``tests``; decide success from ``expectTerminate``,
                   ``exitType``, ``exitText``, ``exceptions``; ``undeployAfter``/``testTimeout``
``Fail``           terminate itself (``normal`` or not, with ``message``) ``delay`` s after start
``ExceptionThrower`` fail on purpose in deploy, start or ping with ``classname: message``
``Assert``         check invariants at start and on liveness (``isTrue``, ``equalsString1``…)
``PingTarget``     ping ``target`` at start and on every liveness check
``BooleanValues``  SmartFrog's test toggle: ``value``, ``toggle``, ``target``
=================  ===============================================================================

Run by ``sfrun``, a TestBlock at the root of an application terminates with its action's
record once the action ended (SmartFrog's keeps running until a JUnit harness reads the
result and undeploys it); elsewhere it honours ``sfShouldTerminate`` as SmartFrog's does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfpy.engine.api import (
    EngineError,
    EventCompound,
    LivenessError,
    Prim,
    TerminationRecord,
    describe_exception,
    record_description,
)
from sfpy.language.model import ComponentDescription

if TYPE_CHECKING:
    from sfpy.engine.api import Timer

FORCED_TERMINATION = "Timed shutdown of test components"


class AssertionFailed(EngineError):
    """An assertion component found an invariant that does not hold
    (SmartFrog's SmartFrogAssertionException)."""


class SimulatedError(EngineError):
    """What an ExceptionThrower raises: the message starts with the Java class name asked for."""


def _set_outcome(component: Prim, record: TerminationRecord, forced_timeout: bool,
                 succeeded: bool | None = None, skipped: bool = False) -> None:
    """SmartFrog's setTestBlockAttributes: the result, as attributes a test can read."""
    success = record.is_normal if succeeded is None else succeeded
    component.sf_replace_attribute("status", record_description(record))
    component.sf_replace_attribute("finished", True)
    component.sf_replace_attribute("succeeded", success)
    component.sf_replace_attribute("failed", not success)
    component.sf_replace_attribute("forcedTimeout", forced_timeout)
    component.sf_replace_attribute("skipped", skipped)


def _says_what_to_do(component: Prim) -> bool:
    context = component.sf_context()
    return any(name in context for name in
               ("sfShouldTerminate", "sfShouldTerminateQuietly", "sfShouldDetach"))


# ===============================================================================================
class TestBlock(EventCompound):
    """Deploy ``action`` (as child ``action``) when started and record how it ended:
    ``finished``, ``succeeded``, ``failed``, ``forcedTimeout`` (booleans) and ``status`` (the
    record: errorType, description, id). ``timeout`` (ms, 0: none) terminates an action that
    runs longer, abnormally unless ``expectTimeout``. A failure to deploy or start the action
    is recorded as "Failed to start up action". Then: as the application root (and without
    sfShould… attributes) it terminates with the action's record; otherwise it honours
    ``sfShouldTerminate``/``sfShouldDetach``/``sfShouldTerminateQuietly`` (default: keep
    running, as SmartFrog's)."""
    declared_attributes = frozenset('action expectTimeout timeout'.split())  # what it reads

    __test__ = False  # not a pytest class

    def deploy(self) -> None:
        self.action()
        self.timeout_ms = self.sf_integer("timeout", 0)
        self.expect_timeout = self.sf_boolean("expectTimeout", False)
        self._action_child: Prim | None = None
        self._forced = False
        self._ended = False
        self._timer: Timer | None = None

    def started(self) -> None:
        created = self.create_child("action", self.action())
        if isinstance(created, TerminationRecord):
            self._end(TerminationRecord.abnormal(
                f"Failed to start up action: {created.description}", id=created.id,
                cause=created.cause))
            return
        self._action_child = created
        if self.timeout_ms > 0:
            self._timer = self.schedule(self.timeout_ms / 1000.0, self._time_up)

    def _time_up(self) -> None:
        child = self._action_child
        if child is None:
            return
        self._forced = True
        text = f"timeout: the action did not finish within {self.timeout_ms} ms"
        self.log.info("%s", text)
        child.sf_terminate(TerminationRecord.normal(text) if self.expect_timeout
                           else TerminationRecord.abnormal(text))

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if child is self._action_child:
            self._action_child = None
            self._end(record)
        else:
            super().child_terminated(child, record)

    def _end(self, record: TerminationRecord) -> None:
        if self._ended:
            return
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        _set_outcome(self, record, self._forced)
        self.log.info("test finished: %s %s", record.type, record.description or "")
        if _says_what_to_do(self):
            self.sf_work_done(record, terminate_by_default=True)
        elif self.sf_parent() is None:
            self.sf_terminate(record)


# ===============================================================================================
class TestCompound(EventCompound):
    """SmartFrog's TestCompound: deploy and start ``action`` (child ``action``), then deploy
    ``tests`` (child ``tests``), and judge:

    * the action fails to deploy or start: success only if ``exitType`` is ``abnormal`` and
      the error contains ``exitText`` (and matches ``exceptions``);
    * the action ends: with ``expectTerminate`` it must end with type ``exitType`` (SmartFrog
      looks for the text, so there "abnormal" passes for "normal") and a description containing ``exitText`` (an expected abnormal end becomes
      a normal one); without it, any end of the action is a failure;
    * ``tests`` ending normally is a success, abnormally a failure;
    * ``undeployAfter`` ms (0 or less: never) terminates the action — a success when it was
      not expected to terminate by itself; ``testTimeout`` ms terminates the tests (failure).

    The outcome is recorded as for TestBlock (``finished``, ``succeeded``, ``failed``,
    ``status``, ``forcedTimeout``, ``skipped``); a failure terminates the TestCompound
    abnormally, a success terminates it normally unless ``sfShouldTerminate`` is false.
    ``condition`` (run only when a condition holds) is not supported.
    """
    declared_attributes = frozenset('action condition exceptions exitText exitType expectTerminate testTimeout tests undeployAfter'.split())  # what it reads

    __test__ = False

    def deploy(self) -> None:
        self.action()
        if isinstance(self.sf_context().get("condition"), ComponentDescription):
            raise EngineError("TestCompound: 'condition' is not supported by sfpy")
        self.undeploy_after = self.sf_integer("undeployAfter", 0)
        self.test_timeout = self.sf_integer("testTimeout", 0)
        self.expect_terminate = self.sf_boolean("expectTerminate", False)
        self.exit_type = self.sf_string("exitType", "normal")
        self.exit_text = self.sf_string("exitText", "")
        exceptions = self.sf_resolve("exceptions", [])
        if not isinstance(exceptions, list) or not all(
            isinstance(t, list) and len(t) == 2 and all(isinstance(s, str) for s in t)
            for t in exceptions
        ):
            raise EngineError("exceptions must be a vector of [classname, text] pairs")
        self.exceptions: list[list[str]] = exceptions
        self._action_child: Prim | None = None
        self._tests_child: Prim | None = None
        self._forced_action = False
        self._forced_tests = False
        self._done = False

    def started(self) -> None:
        created = self.create_child("action", self.action())
        if isinstance(created, TerminationRecord):
            self._startup_failure(created)
            return
        self._action_child = created
        if self.undeploy_after > 0:
            self.schedule(self.undeploy_after / 1000.0, self._undeploy_action)
        tests = self.sf_context().get("tests")
        if isinstance(tests, ComponentDescription) and not self._done:
            made = self.create_child("tests", tests)
            if isinstance(made, TerminationRecord):
                self._conclude(made, False)
                return
            self._tests_child = made
            if self.test_timeout > 0:
                self.schedule(self.test_timeout / 1000.0, self._time_out_tests)

    # -- timers -------------------------------------------------------------------------------
    def _undeploy_action(self) -> None:
        child = self._action_child
        if child is None or self._done:
            return
        self._forced_action = True
        text = f"{FORCED_TERMINATION} after {self.undeploy_after} milliseconds"
        child.sf_terminate(TerminationRecord.abnormal(text) if self.expect_terminate
                           else TerminationRecord.normal(text))

    def _time_out_tests(self) -> None:
        child = self._tests_child
        if child is None or self._done:
            return
        self._forced_tests = True
        child.sf_terminate(TerminationRecord.abnormal(
            f"{FORCED_TERMINATION} after {self.test_timeout} milliseconds"))

    # -- judging ------------------------------------------------------------------------------
    def _startup_failure(self, record: TerminationRecord) -> None:
        message = record.description or ""
        me = self.sf_complete_name()
        if self.exit_type == TerminationRecord.NORMAL:
            self._conclude(TerminationRecord.abnormal(
                "The exception(s) raised at startup time do not match those expected: "
                f"expected successful deployment, but got: {message}", id=record.id,
                cause=record.cause), False)
            return
        problems = []
        exception_check = self._check_exceptions(record)
        if exception_check:
            problems.append(exception_check)
        if self.exit_text not in message:
            problems.append(f"Expected exit text: {self.exit_text} But got: {message}")
        if problems:
            self._conclude(TerminationRecord.abnormal("; ".join(problems), id=record.id,
                                                      cause=record.cause), False)
        else:
            self._conclude(TerminationRecord.normal(
                f"Exiting with expected exception thrown during startup: {message}", id=me), True)

    def _check_exceptions(self, record: TerminationRecord) -> str | None:
        """Each [classname, text] must be found, in order, along the chain of causes (the
        record's description standing for the first when there is no cause)."""
        if not self.exceptions:
            return None
        chain: list[str] = []
        error: BaseException | None = record.cause
        while error is not None and len(chain) < 20:
            chain.append(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
            error = getattr(error, "cause", None) or error.__cause__
        if not chain and record.description:
            chain.append(record.description)
        if not chain:
            return f"No exceptions were in the termination record, expected: {len(self.exceptions)}"
        for index, (classname, text) in enumerate(self.exceptions):
            if index >= len(chain):
                return "Less exceptions than expected"
            if classname and classname not in chain[index]:
                return f"Did not find classname '{classname}' in {chain[index]}"
            if text and text not in chain[index]:
                return f"Did not find text '{text}' in {chain[index]}"
        return None

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if child is self._action_child:
            self._action_child = None
            self._action_ended(record)
        elif child is self._tests_child:
            self._tests_child = None
            if record.is_normal:
                self._conclude(record, True)
            else:
                self.log.info("tests failed: %s", record.description)
                self._conclude(record, False)
        else:
            self._conclude(record, False)

    def _action_ended(self, record: TerminationRecord) -> None:
        if self._forced_action and not self.expect_terminate:
            self.log.info("forced shutdown of the action (expected)")
            self._conclude(record, True)
            return
        if not self.expect_terminate:
            self.log.error("unexpected termination of the action: %s", record)
            if record.is_normal:
                record = TerminationRecord.abnormal(
                    f"{record.description} (this termination was not expected)", id=record.id,
                    cause=record.cause)
            self._conclude(record, False)
            return
        problems = []
        if record.type != self.exit_type:
            problems.append(f"Expected action to terminate with the status {self.exit_type}")
        description = record.description or ""
        if self.exit_text and self.exit_text not in description:
            problems.append(f'Termination message mismatch - expected "{self.exit_text}" '
                            f'but got "{description}"')
        exception_check = self._check_exceptions(record) if not record.is_normal else None
        if exception_check:
            problems.append(exception_check)
        if problems:
            self._conclude(TerminationRecord.abnormal(
                "; ".join(problems) + f"; but got {record}", id=record.id, cause=record.cause),
                False)
        elif record.is_normal:
            self._conclude(record, True)
        else:
            self._conclude(TerminationRecord.normal(record.description, id=record.id,
                                                    cause=record.cause), True)

    def _conclude(self, record: TerminationRecord, succeeded: bool) -> None:
        if self._done:
            return
        self._done = True
        forced = (self.expect_terminate and self._forced_action) or self._forced_tests
        _set_outcome(self, record, forced, succeeded)
        self.log.info("test %s: %s", "succeeded" if succeeded else "failed", record.description)
        if not succeeded:
            self.sf_terminate(record if not record.is_normal else TerminationRecord.abnormal(
                record.description, id=record.id, cause=record.cause))
        else:
            self.sf_work_done(record, terminate_by_default=True)


# ===============================================================================================
class Fail(Prim):
    """SmartFrog's FailComponent: ``delay`` seconds after start (0: at once), if
    ``condition`` holds, terminate with ``message`` — normally if ``normal``, else
    abnormally; ``detach`` detaches first, ``notifyParent false`` terminates quietly."""
    declared_attributes = frozenset('condition delay detach message normal notifyParent'.split())  # what it reads

    def start(self) -> None:
        self.condition = self.sf_resolve("condition", True) is True
        self.delay = self.sf_integer("delay", 0)
        self.detach = self.sf_boolean("detach", False)
        self.message = str(self.sf_resolve("message", ""))
        self.normal = self.sf_boolean("normal", True)
        self.notify_parent = self.sf_boolean("notifyParent", True)
        if not self.condition:
            return
        if self.delay > 0:
            self.schedule(float(self.delay), self._fail)
        else:
            self._fail()

    def _fail(self) -> None:
        me = self.sf_complete_name()
        record = (TerminationRecord.normal(self.message, id=me) if self.normal
                  else TerminationRecord.abnormal(self.message, id=me))
        if self.detach:
            self.sf_detach()
        if self.notify_parent:
            self.sf_terminate(record)
        else:
            self.sf_terminate_quietly(record)


class ExceptionThrower(Prim):
    """Fails on purpose: in deploy (``throwOnDeploy``), start (``throwOnStartup``, default)
    or ping (``throwOnPing``) with "``classname``: ``message``"."""
    declared_attributes = frozenset('classname message throwOnDeploy throwOnPing throwOnStartup'.split())  # what it reads

    def _throw(self, flag: str, default: bool) -> None:
        if self.sf_boolean(flag, default):
            classname = str(self.sf_resolve("classname", "java.lang.Exception"))
            message = str(self.sf_resolve("message", ""))
            raise SimulatedError(f"{classname}: {message}" if message else classname)

    def deploy(self) -> None:
        self._throw("throwOnDeploy", False)

    def start(self) -> None:
        self._throw("throwOnStartup", True)

    def ping(self) -> None:
        try:
            self._throw("throwOnPing", False)
        except SimulatedError as error:
            raise LivenessError(str(error)) from error


# ===============================================================================================
class Assert(Prim):
    """SmartFrog's AssertComponent: invariants checked at start (``checkOnStartup``) and on
    every liveness check (``checkOnLiveness``); a failure fails that step with ``message`` (or
    what failed). After the start check it honours ``sfShouldTerminate`` & co.

    Checks: ``isTrue`` must be true, ``isFalse`` false; ``equalsString1`` = ``equalsString2``
    (``equalityIgnoresCase``); ``fileExists``, ``dirExists``; on the component ``reference``
    links to (``referenceRequired``): ``evaluatesTrue``/``evaluatesFalse`` (the name of a
    test method it offers: a name its class lists in ``EVALUABLE``), ``attribute`` present, equal to
    ``attributeEquals`` as text, or a vector with ``attributeVectorMinLength``,
    ``attributeVectorMaxLength``, element ``attributeVectorIndex`` = ``attributeVectorValue``.
    """
    declared_attributes = frozenset('attribute attributeEquals attributeVectorIndex attributeVectorMaxLength attributeVectorMinLength attributeVectorValue checkOnLiveness checkOnStartup dirExists equalityIgnoresCase equalsString1 equalsString2 evaluatesFalse evaluatesTrue fileExists isFalse isTrue message reference referenceRequired'.split())  # what it reads

    def start(self) -> None:
        if self.sf_resolve("checkOnStartup", True) is True:
            self.check_assertions()
        self.sf_work_done(TerminationRecord.normal("assertions hold", id=self.sf_complete_name()))

    def ping(self) -> None:
        if self.sf_resolve("checkOnLiveness", True) is True:
            try:
                self.check_assertions()
            except AssertionFailed as error:
                raise LivenessError(str(error)) from error

    def evaluate(self) -> bool:
        """Used as a condition: do the assertions hold?"""
        return self.check() is None

    def check_assertions(self) -> None:
        problem = self.check()
        if problem is not None:
            message = self.sf_resolve("message", None)
            raise AssertionFailed(message if isinstance(message, str) else problem)

    def check(self) -> str | None:
        """What does not hold (None when everything does)."""
        if self.sf_resolve("isTrue", True) is not True:
            return "isTrue evaluates to false"
        if self.sf_resolve("isFalse", False) is not False:
            return "isFalse evaluates to true"
        ignore_case = self.sf_resolve("equalityIgnoresCase", False) is True
        problem = self._check_reference(ignore_case)
        if problem:
            return problem
        file = self.sf_resolve("fileExists", None)
        if file is not None:
            path = Path(str(file))
            if not path.exists():
                return f"File not found: {file}"
            if not path.is_file():
                return f"Not a file: {file}"
        folder = self.sf_resolve("dirExists", None)
        if folder is not None:
            path = Path(str(folder))
            if not path.exists():
                return f"Directory not found: {folder}"
            if not path.is_dir():
                return f"Not a directory: {folder}"
        first = self.sf_resolve("equalsString1", None)
        second = self.sf_resolve("equalsString2", None)
        if first is not None or second is not None:
            if first is None or second is None:
                missing = "equalsString1" if first is None else "equalsString2"
                return f"Undefined attribute: {missing}"
            if not _equal(_text(first), _text(second), ignore_case):
                return f'Expected "{_text(first)}" actual "{_text(second)}"'
        return None

    def _check_reference(self, ignore_case: bool) -> str | None:
        required = self.sf_resolve("referenceRequired", False) is True
        if "reference" not in self.sf_context():
            return "referenceRequired is true but there is no reference value" if required else None
        try:
            target = self.sf_resolve("reference")
        except EngineError as error:
            return f"The reference does not resolve: {error}" if required else None
        evaluates_true = self.sf_resolve("evaluatesTrue", None)
        if isinstance(evaluates_true, str) and not _evaluate(target, evaluates_true):
            return f"Evaluated to false: {_name(target)}.{evaluates_true}"
        evaluates_false = self.sf_resolve("evaluatesFalse", None)
        if isinstance(evaluates_false, str) and _evaluate(target, evaluates_false):
            return f"Evaluated to true: {_name(target)}.{evaluates_false}"
        attribute = self.sf_resolve("attribute", None)
        if not isinstance(attribute, str):
            return None
        try:
            if isinstance(target, Prim):
                value = target.sf_resolve(attribute)
            elif isinstance(target, ComponentDescription):
                value = target.attributes[attribute]
            else:
                raise KeyError(attribute)
        except (EngineError, KeyError):
            return f"Could not resolve attribute {attribute} of {_name(target)}"
        expected = self.sf_resolve("attributeEquals", None)
        if expected is not None:
            if not _equal(_text(expected), _text(value), ignore_case):
                return f"Expected <{_text(expected)}> actual <{_text(value)}>"
            return None
        minimum = self.sf_resolve("attributeVectorMinLength", None)
        maximum = self.sf_resolve("attributeVectorMaxLength", None)
        index = self.sf_resolve("attributeVectorIndex", None)
        if minimum is None and maximum is None and index is None:
            return None
        if not isinstance(value, list):
            return f"Not a list: {_text(value)}"
        if isinstance(minimum, int) and len(value) < minimum:
            return f"List too short: needs to be {minimum} elements long, not {len(value)}"
        if isinstance(maximum, int) and len(value) > maximum:
            return f"List too long: maximum is {maximum}, not {len(value)}"
        if isinstance(index, int):
            if index >= len(value):
                return f"Vector too small, expected {index + 1} elements, found {len(value)}"
            wanted = self.sf_resolve("attributeVectorValue", None)
            if wanted is not None and not _equal(_text(wanted), _text(value[index]), ignore_case):
                return f"Expected <{_text(wanted)}> actual <{_text(value[index])}>"
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(first: str, second: str, ignore_case: bool) -> bool:
    return first.lower() == second.lower() if ignore_case else first == second


def _name(target: Any) -> str:
    name = getattr(target, "sf_complete_name", None)
    return name() if callable(name) else repr(target)


def _evaluate(target: Any, method: str) -> bool:
    """Call a test method a component offers (its class lists it in ``EVALUABLE``)."""
    allowed = getattr(target, "EVALUABLE", ())
    if method not in allowed:
        raise AssertionFailed(f"{_name(target)} offers no test method {method!r}"
                              + (f" (it offers {', '.join(sorted(allowed))})" if allowed else ""))
    result = getattr(target, method)()
    if not isinstance(result, bool):
        raise AssertionFailed(f"method {method} is not boolean")
    return result


class PingTarget(Prim):
    """Pings ``target`` (a LAZY link to a component) at start and on every liveness check;
    its failure is this component's. After the start check it honours sfShouldTerminate."""
    declared_attributes = frozenset({'target'})  # names it reads (misspelling warnings)

    def _ping_target(self) -> None:
        target = self.sf_resolve("target")
        if not isinstance(target, Prim):
            raise EngineError(f"target of {self.sf_complete_name()} is not a component: {target!r}")
        try:
            target.sf_ping(self)
        except Exception as error:  # noqa: BLE001 - any failure of the target is reported
            raise LivenessError(f"ping of {target.sf_complete_name()} failed: "
                                f"{describe_exception(error)}") from error

    def start(self) -> None:
        self._ping_target()
        self.sf_work_done()

    def ping(self) -> None:
        self._ping_target()


class BooleanValues(Prim):
    """SmartFrog's test toggle (org.smartfrog.test.system.assertions.BooleanValuesImpl): at
    start, if ``toggle``, flip its ``value`` (absent reads as true) and set the same value on
    ``target`` (a LAZY link to a component), then honour sfShouldTerminate & co. Offers the
    test methods getTrue, getFalse and getValue (for Assert's evaluatesTrue)."""
    declared_attributes = frozenset('target toggle value'.split())  # what it reads

    EVALUABLE = ("getTrue", "getFalse", "getValue")

    def start(self) -> None:
        target = self.sf_resolve("target", None)
        if target is not None and not isinstance(target, Prim):
            raise EngineError(f"target of {self.sf_complete_name()} is not a component: {target!r}")
        if self.sf_resolve("toggle", False) is True:
            value = not self.getValue()
            self.sf_replace_attribute("value", value)
            if target is not None:
                target.sf_replace_attribute("value", value)
        self.sf_work_done()

    def getTrue(self) -> bool:  # noqa: N802 - SmartFrog's method names
        return True

    def getFalse(self) -> bool:  # noqa: N802
        return False

    def getValue(self) -> bool:  # noqa: N802
        value = self.sf_resolve("value", True)
        return value is True


__all__ = [
    "Assert",
    "AssertionFailed",
    "BooleanValues",
    "ExceptionThrower",
    "Fail",
    "PingTarget",
    "SimulatedError",
    "TestBlock",
    "TestCompound",
]
