from django.urls import path

from chat import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/<str:room>/", views.room, name="room"),
    path("api/rooms", api.create_room, name="rooms"),
    path("api/rooms/<str:room>/messages", views.room_messages, name="room-messages"),
    path("api/rooms/<str:room>/members", api.room_members, name="room-members"),
    path("api/rooms/<str:room>/members/<str:username>", api.room_member, name="room-member"),
    path("api/ws-tickets", api.ws_tickets, name="ws-tickets"),
]
