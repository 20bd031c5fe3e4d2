"""The patient portal: mobile-first pages to sign in with an SMS code, book, cancel and reschedule."""
