"""The footer lets go of the keys it replaces (console/widgets/footer.py; Textualize/textual#6666): a console
open all day switches screens and opens dialogs thousands of times, and each recompose used to keep its keys."""

from __future__ import annotations

import gc
from types import ModuleType

from textual.widgets._footer import FooterKey

from console.app import LoadmasterApp
from console.screens.fleet import FleetScreen

SIZE = (120, 40)


def live_footer_keys() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, FooterKey))


async def test_screen_switches_and_dialogs_leave_no_footer_keys_behind(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "1", "question_mark", "escape")
        await pilot.pause()
        settled = live_footer_keys()
        for _ in range(10):
            await pilot.press("2", "1", "question_mark", "escape", "colon", "escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        # Every screen keeps one footer; what 10 rounds of recomposing made beyond that is gone.
        assert live_footer_keys() <= settled + 5, (settled, live_footer_keys())
