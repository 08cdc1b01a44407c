"""A failover plan in words: survives or not, what moves where, what is left without a place."""

from __future__ import annotations

from rich.text import Text

from core.model import FailoverPlan


def failover_text(plan: FailoverPlan, *, limit: int = 12) -> Text:
    what = plan.target if plan.scope == "host" else f"{plan.scope} {plan.target} ({', '.join(plan.lost_hosts)})"
    text = Text(f"If {what} is lost: ", style="bold")
    if plan.survives:
        text.append("the cluster survives", style="bold green")
    else:
        text.append(f"{', '.join(plan.degraded) or 'services'} degraded", style="bold red")
    text.append(f" · {plan.status.value}\n", style="dim")
    if not plan.moves and not plan.unplaced:
        text.append("nothing runs there; nothing moves\n", style="dim")
    for i, (replica, host) in enumerate(sorted(plan.moves.items())):
        if i == limit:
            text.append(f"… and {len(plan.moves) - limit} more moves\n", style="dim")
            break
        text.append(f"  {replica} → {host}\n")
    for replica, why in sorted(plan.unplaced.items()):
        text.append(f"  {replica} unplaced: {why}\n", style="red")
    if plan.others_moved:
        text.append(f"  {plan.others_moved} other replicas move to make room\n", style="yellow")
    return text
