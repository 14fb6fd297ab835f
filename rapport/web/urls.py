from django.urls import path

from rapport.web import customers, data, views

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
]
