// Stand-in written by avs-pair from the AVS Device SDK's documentation (see tests/sdk-stand-in/README.md).
#ifndef ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_
#define ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_

namespace alexaClientSDK {
namespace avsCommon {
namespace sdkInterfaces {

/// Observes the authorization state of an AuthDelegateInterface.
class AuthObserverInterface {
public:
    enum class State { UNINITIALIZED, REFRESHED, EXPIRED, UNRECOVERABLE_ERROR, AUTHORIZING };
    enum class Error {
        SUCCESS,
        UNKNOWN_ERROR,
        AUTHORIZATION_FAILED,
        UNAUTHORIZED_CLIENT,
        SERVER_ERROR,
        INVALID_REQUEST,
        INVALID_VALUE,
        AUTHORIZATION_EXPIRED,
        UNSUPPORTED_GRANT_TYPE,
        INVALID_CODE_PAIR,
        AUTHORIZATION_PENDING,
        SLOW_DOWN,
        INTERNAL_ERROR,
        INVALID_CBL_CLIENT_ID
    };
    virtual ~AuthObserverInterface() = default;
    virtual void onAuthStateChange(State newState, Error error) = 0;
};

}  // namespace sdkInterfaces
}  // namespace avsCommon
}  // namespace alexaClientSDK

#endif
