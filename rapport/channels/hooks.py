"""What apps above the channels add to them, filled from their AppConfig.ready, so that
the channels never import them (the layers in pyproject.toml's [tool.importlinter]).

- `answer_listeners`: told of a customer's answer to a message (`opened`, `clicked`,
  `delivered`), as `listener(message=, answer=, at=)`. The decisions app records a
  message's opens and clicks as its decided action's impressions and clicks.
- `content_deciders["broadcast"]`: `decider(sends=[(message, profile)], now=)` gives
  each recipient of a broadcast whose content is decided (`Broadcast.decide`) their
  content (the message's `content` or `template`, `decision_id`, `decision_action`,
  saved) and answers {message id: skip reason} for those it gave nothing and who have
  no fallback content.
- `block_renderers["next_best_action"]`: what the template tag
  `{% next_best_action placement="..." %}` renders for a message.
- `untracked_prefixes`: paths of links the click tracking leaves as they are (they
  record their own clicks).
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

answer_listeners: list[Callable[..., None]] = []
content_deciders: dict[str, Callable[..., dict]] = {}
block_renderers: dict[str, Callable[..., str]] = {}
untracked_prefixes: list[str] = []


def message_answered(message: Any, answer: str, at: datetime | None = None) -> None:
    """Tell the listeners; a listener's failure never fails the tracking that called."""
    for listener in answer_listeners:
        try:
            listener(message=message, answer=answer, at=at)
        except Exception:
            logger.exception("a listener of %s answers failed for %s", answer, message.pk)
