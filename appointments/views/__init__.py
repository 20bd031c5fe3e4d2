"""Staff console pages for appointments: schedules (sessions, weekly templates, holidays) and bookings."""
