from django.apps import apps
from django.urls import path

from rapport.web import (
    accounts,
    analytics,
    bulk,
    channel_settings,
    commerce,
    customers,
    data,
    duplicates,
    invitations,
    lists,
    messages,
    predictions,
    search,
    segments,
    views,
    workspace_settings,
)

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.RapportLoginView.as_view(), name="login"),
    path("logout/", views.RapportLogoutView.as_view(), name="logout"),
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
    path("preferences/language/", views.language_set, name="language_set"),
    path("search/", search.search, name="search"),
    path("messages/broadcasts/", messages.broadcast_list, name="broadcast_list"),
    path("messages/broadcasts/new/", messages.broadcast_new, name="broadcast_new"),
    path(
        "messages/broadcasts/<uuid:broadcast_id>/",
        messages.broadcast_detail,
        name="broadcast_detail",
    ),
    path(
        "messages/broadcasts/<uuid:broadcast_id>/send/",
        messages.broadcast_send,
        name="broadcast_send",
    ),
    path(
        "messages/broadcasts/<uuid:broadcast_id>/cancel/",
        messages.broadcast_cancel,
        name="broadcast_cancel",
    ),
    path(
        "messages/broadcasts/<uuid:broadcast_id>/test/",
        messages.broadcast_test_send,
        name="broadcast_test_send",
    ),
    path("messages/templates/", messages.template_list, name="template_list"),
    path("messages/templates/new/", messages.template_new, name="template_new"),
    path(
        "messages/templates/<uuid:template_id>/",
        messages.template_detail,
        name="template_detail",
    ),
    path(
        "messages/templates/<uuid:template_id>/test/",
        messages.template_test_send,
        name="template_test_send",
    ),
    path("messages/preview/", messages.content_preview, name="message_preview"),
    path("customers/", customers.customer_list, name="customer_list"),
    path("customers/bulk/", bulk.bulk_action, {"list_name": "customers"}, name="customer_bulk"),
    path("accounts/bulk/", bulk.bulk_action, {"list_name": "accounts"}, name="account_bulk"),
    path(
        "segments/<uuid:segment_id>/bulk/",
        bulk.bulk_action,
        {"list_name": "segment_members"},
        name="segment_bulk",
    ),
    path(
        "customers/views/",
        lists.saved_view_save,
        {"list_name": "customers"},
        name="customer_view_save",
    ),
    path(
        "customers/views/<uuid:view_id>/",
        lists.saved_view_change,
        {"list_name": "customers"},
        name="customer_view_change",
    ),
    path(
        "accounts/views/",
        lists.saved_view_save,
        {"list_name": "accounts"},
        name="account_view_save",
    ),
    path(
        "accounts/views/<uuid:view_id>/",
        lists.saved_view_change,
        {"list_name": "accounts"},
        name="account_view_change",
    ),
    path("customers/<uuid:profile_id>/", customers.customer_detail, name="customer_detail"),
    path(
        "customers/<uuid:profile_id>/timeline/",
        customers.customer_timeline,
        name="customer_timeline",
    ),
    path("customers/<uuid:profile_id>/merge/", customers.customer_merge, name="customer_merge"),
    path(
        "customers/<uuid:profile_id>/traits/",
        customers.customer_traits_edit,
        name="customer_traits_edit",
    ),
    path("customers/<uuid:profile_id>/export/", customers.customer_export, name="customer_export"),
    path("customers/<uuid:profile_id>/erase/", customers.customer_erase, name="customer_erase"),
    path("merges/<uuid:merge_id>/unmerge/", customers.customer_unmerge, name="customer_unmerge"),
    path("data/sources/", data.source_list, name="source_list"),
    path("data/sources/new/", data.source_create, name="source_create"),
    path("data/sources/<uuid:source_id>/", data.source_detail, name="source_detail"),
    path("data/sources/<uuid:source_id>/keys/", data.write_key_create, name="write_key_create"),
    path(
        "data/sources/<uuid:source_id>/origins/",
        data.source_origins_update,
        name="source_origins_update",
    ),
    path(
        "data/sources/<uuid:source_id>/keys/<uuid:key_id>/revoke/",
        data.write_key_revoke,
        name="write_key_revoke",
    ),
    path("data/debugger/", data.debugger, name="debugger"),
    path("data/quarantine/", data.quarantine_list, name="quarantine_list"),
    path("data/imports/", data.import_list, name="import_list"),
    path("data/imports/<uuid:import_id>/", data.import_detail, name="import_detail"),
    path("data/pipeline/", data.pipeline_page, name="pipeline"),
    path("data/pipeline/retry/", data.pipeline_retry, name="pipeline_retry"),
    path("accounts/", accounts.account_list, name="account_list"),
    path("accounts/<uuid:account_id>/", accounts.account_detail, name="account_detail"),
    path(
        "accounts/<uuid:account_id>/timeline/",
        accounts.account_timeline,
        name="account_timeline",
    ),
    path(
        "account-merges/<uuid:merge_id>/unmerge/",
        accounts.account_unmerge,
        name="account_unmerge",
    ),
    path("segments/", segments.segment_list, name="segment_list"),
    path("segments/new/", segments.segment_new, name="segment_new"),
    path("segments/preview/", segments.segment_preview, name="segment_preview"),
    path("segments/<uuid:segment_id>/", segments.segment_detail, name="segment_detail"),
    path("segments/<uuid:segment_id>/edit/", segments.segment_edit, name="segment_edit"),
    path("segments/<uuid:segment_id>/refresh/", segments.segment_refresh, name="segment_refresh"),
    path(
        "segments/<uuid:segment_id>/snapshot/", segments.segment_snapshot, name="segment_snapshot"
    ),
    path(
        "segments/<uuid:segment_id>/members/",
        segments.segment_members_add,
        name="segment_members_add",
    ),
    path("segments/<uuid:segment_id>/delete/", segments.segment_delete, name="segment_delete"),
    path("segments/<uuid:segment_id>/export/", segments.segment_export, name="segment_export"),
    path("analytics/", analytics.dashboard, name="analytics"),
    path("analytics/snapshots/", analytics.snapshots_take, name="analytics_snapshots_take"),
    path("analytics/period/", analytics.period_report, name="analytics_period"),
    path("analytics/funnel/", analytics.funnel_page, name="analytics_funnel"),
    path("analytics/cohorts/", analytics.cohorts_page, name="analytics_cohorts"),
    path("analytics/lifecycle/", analytics.loyalty_page, name="analytics_lifecycle"),
    path("analytics/rfm/", analytics.rfm_page, name="analytics_rfm"),
    path("analytics/customers/", analytics.customers_page, name="analytics_customers"),
    path("analytics/customers/save/", analytics.customers_save, name="analytics_customers_save"),
    path("models/", predictions.models_page, name="models"),
    path("models/clv/train/", predictions.model_train, {"kind": "clv"}, name="model_train_clv"),
    path(
        "models/churn/train/", predictions.model_train, {"kind": "churn"}, name="model_train_churn"
    ),
    path(
        "models/drivers/<uuid:driver_id>/segment/",
        predictions.driver_segment_create,
        name="driver_segment_create",
    ),
    path("rfm/", segments.rfm_page, name="rfm"),
    path("rfm/refresh/", segments.rfm_refresh, name="rfm_refresh"),
    path("lifecycle/", segments.lifecycle_page, name="lifecycle"),
    path("lifecycle/refresh/", segments.lifecycle_refresh, name="lifecycle_refresh"),
    path(
        "lifecycle/stages/<uuid:stage_id>/rename/",
        segments.lifecycle_stage_rename,
        name="lifecycle_stage_rename",
    ),
    path("duplicates/", duplicates.duplicate_list, name="duplicate_list"),
    path("duplicates/scan/", duplicates.duplicate_scan, name="duplicate_scan"),
    path("duplicates/merge/", duplicates.duplicate_merge_many, name="duplicate_merge_many"),
    path(
        "duplicates/<uuid:candidate_id>/merge/",
        duplicates.duplicate_merge,
        name="duplicate_merge",
    ),
    path(
        "duplicates/<uuid:candidate_id>/dismiss/",
        duplicates.duplicate_dismiss,
        name="duplicate_dismiss",
    ),
    path("settings/members/", workspace_settings.member_list, name="member_list"),
    path(
        "settings/members/<uuid:member_id>/role/",
        workspace_settings.member_change_role,
        name="member_change_role",
    ),
    path(
        "settings/members/<uuid:member_id>/remove/",
        workspace_settings.member_remove,
        name="member_remove",
    ),
    path(
        "settings/invitations/<uuid:invitation_id>/revoke/",
        workspace_settings.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:secret>/", invitations.invitation_accept, name="invitation_accept"),
    path("settings/tokens/", workspace_settings.api_token_list, name="api_token_list"),
    path(
        "settings/tokens/<uuid:token_id>/revoke/",
        workspace_settings.api_token_revoke,
        name="api_token_revoke",
    ),
    path("settings/identity/", workspace_settings.identity_rules, name="identity_rules"),
    path("settings/commerce/", commerce.commerce_settings, name="commerce_settings"),
    path(
        "settings/commerce/rates/",
        commerce.exchange_rates_upload,
        name="exchange_rates_upload",
    ),
    path(
        "settings/commerce/rates/<uuid:rate_id>/delete/",
        commerce.exchange_rate_delete,
        name="exchange_rate_delete",
    ),
]

urlpatterns += channel_settings.urlpatterns

if apps.is_installed("rapport.journeys"):
    from rapport.web import journeys

    urlpatterns += [
        path("journeys/", journeys.journey_list, name="journey_list"),
        path("journeys/new/", journeys.journey_new, name="journey_new"),
        path("journeys/<uuid:journey_id>/", journeys.journey_detail, name="journey_detail"),
        path(
            "journeys/<uuid:journey_id>/validate/",
            journeys.journey_validate,
            name="journey_validate",
        ),
        path("journeys/<uuid:journey_id>/start/", journeys.journey_start, name="journey_start"),
        path("journeys/<uuid:journey_id>/pause/", journeys.journey_pause, name="journey_pause"),
        path("journeys/<uuid:journey_id>/stop/", journeys.journey_stop, name="journey_stop"),
    ]

if apps.is_installed("rapport.decisions"):
    from rapport.web import decisions

    urlpatterns += [
        path("decisions/actions/", decisions.action_list, name="decision_action_list"),
        path("decisions/new/", decisions.action_new, name="decision_action_new"),
        path(
            "decisions/actions/<slug:key>/",
            decisions.action_detail,
            name="decision_action_detail",
        ),
        path(
            "decisions/actions/<slug:key>/edit/",
            decisions.action_edit,
            name="decision_action_edit",
        ),
        path(
            "decisions/actions/<slug:key>/delete/",
            decisions.action_delete,
            name="decision_action_delete",
        ),
        path("decisions/settings/", decisions.decision_settings, name="decision_settings"),
        path(
            "customers/<uuid:profile_id>/next-best-action/",
            decisions.customer_next_action,
            name="decision_customer_simulate",
        ),
    ]

if apps.is_installed("rapport.sales"):
    from rapport.web import sales

    urlpatterns += [
        path("deals/", sales.deal_board, name="deal_board"),
        path("deals/list/", sales.deal_list, name="deal_list"),
        path("deals/forecast/", sales.deal_forecast, name="deal_forecast"),
        path("deals/lead-model/train/", sales.lead_model_train, name="deal_lead_model_train"),
        path("deals/new/", sales.deal_new, name="deal_new"),
        path("deals/pipelines/new/", sales.pipeline_new, name="deal_pipeline_new"),
        path("deals/<uuid:deal_id>/", sales.deal_detail, name="deal_detail"),
        path("deals/<uuid:deal_id>/edit/", sales.deal_edit, name="deal_edit"),
        path("deals/<uuid:deal_id>/move/", sales.deal_move, name="deal_move"),
        path("notes/new/", sales.note_new, name="note_new"),
        path("tasks/", sales.task_list, name="task_list"),
        path("tasks/new/", sales.task_new, name="task_new"),
        path("tasks/<uuid:task_id>/complete/", sales.task_complete, name="task_complete"),
        path(
            "customers/<uuid:profile_id>/owner/",
            sales.customer_owner_set,
            name="customer_owner_set",
        ),
    ]
