from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        from agents.consumers import frame_handler_register, resume_provider_register
        from agents.services import (
            agent_freed_listener_register,
            ring_withdrawer_register,
            unfiled_call_reader_register,
            wrap_up_ender_register,
        )
        from calls import handlers, outbound, routing, selectors
        from calls.services import capacity_lock_for_events
        from compliance.decisions import live_calls_reader_register
        from whatsapp import dispatch

        dispatch.register("call.connect", handlers.call_connect_received)
        dispatch.register_many("call.connect", handlers.calls_connect_received)
        dispatch.register_lock_taker(capacity_lock_for_events)
        dispatch.register("call.terminate", handlers.call_terminate_received)
        dispatch.register_many("call.terminate", handlers.calls_terminate_received)
        dispatch.register("call.status", outbound.outbound_status_received)
        frame_handler_register("call.accept", handlers.accept_frame)
        frame_handler_register("call.decline", handlers.decline_frame)
        frame_handler_register("call.media_offer", handlers.media_offer_frame)
        frame_handler_register("call.hold", handlers.switch_frame)
        frame_handler_register("call.mute", handlers.switch_frame)
        frame_handler_register("call.hangup", handlers.hang_up_frame)
        frame_handler_register("call.wrap_up", handlers.wrap_up_frame)
        frame_handler_register("call.wrap_up_draft", handlers.wrap_up_draft_frame)
        frame_handler_register("call.dial", handlers.dial_frame)
        frame_handler_register("call.fallback", handlers.fallback_frame)
        frame_handler_register("call.check", handlers.check_frame)
        agent_freed_listener_register(routing.route_for_agent)
        unfiled_call_reader_register(selectors.call_to_file)
        ring_withdrawer_register(routing.offer_withdraw)
        wrap_up_ender_register(routing.wrap_up_end)
        resume_provider_register(selectors.resume_frames_for_agent)
        live_calls_reader_register(selectors.live_calls_for_compliance)
        from calls.metrics import calls_metrics
        from core.metrics import metrics_source_register

        metrics_source_register(calls_metrics)
