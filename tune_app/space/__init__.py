"""Search spaces: a W&B sweep file → :class:`SearchSpec` (validated), Optuna's view of it, stages.

Pure (yaml + optuna + polsess.config): nothing here starts or imports Ray.

- :mod:`.sweep` reads a sweep file; :mod:`.distributions` maps each W&B distribution to a
  :class:`Param`; :mod:`.schedule` reads ``early_terminate``;
- :mod:`.param` is the one home of a value's membership of the space and of its Optuna distribution;
- :mod:`.sampling` builds the sampler and previews its first suggestions;
- :mod:`.stages` narrows a space stage by stage; :mod:`.report` is the dry-run view.
"""

from .param import Param
from .report import describe, format_dry_run
from .sampling import make_sampler, optuna_space, sample_configs
from .spec import SchedulerSpec, SearchSpec
from .sweep import load_search, resolve_param_name, search_from_dict

__all__ = [
    "Param",
    "SchedulerSpec",
    "SearchSpec",
    "describe",
    "format_dry_run",
    "load_search",
    "make_sampler",
    "optuna_space",
    "resolve_param_name",
    "sample_configs",
    "search_from_dict",
]
