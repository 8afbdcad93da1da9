"""The one pipeline every priced request goes through, whichever door it came in by:
principal → model + grant → chain (fallbacks, deployments) → provider request (built before the
hold: what the dialect cannot express is a 400 with nothing held) → hold → upstream attempts through
the Router → answer or stream → usage event (and the hold's mark).

Files by role: `call.py` (what one request carries), `ports.py` (the collaborators it is given and
its refusal), `admission.py` (principal, model, chain, provider requests, the hold), `upstream.py`
(one attempt: the pooled httpx client or the lean HTTP/1.1 client), `accounting.py` (price, usage
event, mark, release), `service.py` (`Pipeline`, which runs them in order). The routes only parse
their dialect's request into a `Call` and shape the answer back; chat's speed features are options
of a call (`stock`: the hold stock; the lean client whenever a model has one).
"""

from tollgate.gateway.pipeline.call import Call, Result
from tollgate.gateway.pipeline.ports import UpstreamRefused
from tollgate.gateway.pipeline.service import Pipeline

__all__ = ["Call", "Pipeline", "Result", "UpstreamRefused"]
