from django.urls import path

from rapport.web import (
    accounts,
    customers,
    data,
    duplicates,
    predictions,
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
    path("customers/", customers.customer_list, name="customer_list"),
    path("customers/<uuid:profile_id>/", customers.customer_detail, name="customer_detail"),
    path(
        "customers/<uuid:profile_id>/timeline/",
        customers.customer_timeline,
        name="customer_timeline",
    ),
    path("customers/<uuid:profile_id>/merge/", customers.customer_merge, name="customer_merge"),
    path("customers/<uuid:profile_id>/export/", customers.customer_export, name="customer_export"),
    path("customers/<uuid:profile_id>/erase/", customers.customer_erase, name="customer_erase"),
    path("merges/<uuid:merge_id>/unmerge/", customers.customer_unmerge, name="customer_unmerge"),
    path("data/sources/", data.source_list, name="source_list"),
    path("data/sources/new/", data.source_create, name="source_create"),
    path("data/sources/<uuid:source_id>/", data.source_detail, name="source_detail"),
    path("data/sources/<uuid:source_id>/keys/", data.write_key_create, name="write_key_create"),
    path(
        "data/sources/<uuid:source_id>/keys/<uuid:key_id>/revoke/",
        data.write_key_revoke,
        name="write_key_revoke",
    ),
    path("data/debugger/", data.debugger, name="debugger"),
    path("data/quarantine/", data.quarantine_list, name="quarantine_list"),
    path("data/imports/", data.import_list, name="import_list"),
    path("data/imports/<uuid:import_id>/", data.import_detail, name="import_detail"),
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
    path("settings/tokens/", workspace_settings.api_token_list, name="api_token_list"),
    path(
        "settings/tokens/<uuid:token_id>/revoke/",
        workspace_settings.api_token_revoke,
        name="api_token_revoke",
    ),
    path("settings/identity/", workspace_settings.identity_rules, name="identity_rules"),
]
